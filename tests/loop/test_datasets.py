"""Dataset snapshots of labeled samples: id from the members, stable split by image, a
regression set that only grows, and an export the trainers read (their own loaders are used
here: the CRNN's labelled-crops reader and the defect model's class folders)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cloud.services import datasets
from cloud.services.blobs import LocalBlobStore
from cloud.services.labels import DEFECT_CLASSES
from edge.contracts.errors import DockgateError, ErrorCode
from tests.loop.env import LoopCloud, png

TEXTS = [
    "(01)06901234567892 (17)270831 (10)A24B117",
    "LOT: A24B117",
    "EXP 08/27",
    "(10)B25C220",
]


def label(cloud: LoopCloud, sample: int, body: dict[str, Any]) -> dict[str, Any]:
    r = cloud.http.post(f"/v1/samples/{sample}/labels", json=body, headers=cloud.login("labeler"))
    assert r.status_code == 200, r.text
    return dict(r.json())


def populate(cloud: LoopCloud, n_codes: int, n_defects: int, seed: int = 0) -> list[int]:
    ids = []
    for i in range(n_codes):
        sid = cloud.upload(png(seed + i)).id
        label(cloud, sid, {"kind": "code", "text": TEXTS[i % len(TEXTS)]})
        ids.append(sid)
    for i in range(n_defects):
        cls = DEFECT_CLASSES[i % len(DEFECT_CLASSES)]
        sid = cloud.upload(png(seed + 1000 + i, (64, 96)), {"kind": "defect"}).id
        box = None if cls == "ok" else [4, 4, 40, 30]
        label(cloud, sid, {"kind": "defect", "class": cls, "box": box})
        ids.append(sid)
    return ids


def snapshot(cloud: LoopCloud, **kw: Any) -> tuple[str, bool]:
    with cloud.svc.sessions.begin() as s:
        ds, created = datasets.create(s, "test", **kw)
        return ds.id, created


def members(cloud: LoopCloud, dataset_id: str) -> dict[str, tuple[str, int]]:
    with cloud.svc.sessions() as s:
        return {m.sha256: (m.split, lb.id) for m, lb, _ in datasets.members_of(s, dataset_id)}


def test_split_is_stable_and_near_its_shares() -> None:
    shas = [f"{i:064x}" for i in range(4000)]
    splits = [datasets.split_of(h, 10, 10) for h in shas]
    assert splits == [datasets.split_of(h, 10, 10) for h in shas]
    assert 0.08 < splits.count("val") / 4000 < 0.12
    assert 0.08 < splits.count("regression") / 4000 < 0.12
    # growing the validation share only moves images out of train
    wider = [datasets.split_of(h, 20, 10) for h in shas]
    assert all(a == b for a, b in zip(splits, wider, strict=True) if a != "train")


def test_snapshot_id_comes_from_its_members(cloud: LoopCloud) -> None:
    with cloud.svc.sessions.begin() as s, pytest.raises(DockgateError) as err:
        datasets.create(s, "test")
    assert err.value.code is ErrorCode.NOT_FOUND  # nothing labeled yet
    populate(cloud, 8, 5)
    first, created = snapshot(cloud)
    assert created and len(first) == datasets.ID_HEX
    got = members(cloud, first)
    assert len(got) == 13
    lines = sorted(f"{sha} {lid} {split}\n" for sha, (split, lid) in got.items())
    import hashlib

    assert hashlib.sha256("".join(lines).encode()).hexdigest()[:12] == first
    for sha, (split, _) in got.items():
        assert split == datasets.split_of(sha, 10, 10)
    again, created_again = snapshot(cloud)
    assert (again, created_again) == (first, False)  # nothing new, nothing created
    # a new label is a new snapshot, which names the one before it
    sid = cloud.upload(png(99)).id
    label(cloud, sid, {"kind": "code", "text": "(10)NEW001"})
    second, created = snapshot(cloud)
    assert created and second != first and len(members(cloud, second)) == 14
    with cloud.svc.sessions() as s:
        listed = datasets.listing(s)
        assert [d.id for d in listed] == [second, first] and listed[0].parent == first
        assert sum(listed[0].counts["code"].values()) == 9
        assert sum(listed[0].counts["defect"].values()) == 5


def test_one_image_once_with_its_newest_label(cloud: LoopCloud) -> None:
    data = png(7)
    a = cloud.upload(data).id
    b = cloud.upload(data).id  # relabeled on the edge: a new sample id, the same bytes
    label(cloud, a, {"kind": "code", "text": "(10)AAA111"})
    newest = label(cloud, b, {"kind": "code", "text": "(10)BBB222"})
    ds, _ = snapshot(cloud)
    assert [lid for _, lid in members(cloud, ds).values()] == [newest["id"]]


def test_regression_set_only_grows(cloud: LoopCloud) -> None:
    populate(cloud, 16, 0)
    first, _ = snapshot(cloud, val_percent=10, regression_percent=40)
    frozen = {sha for sha, (split, _) in members(cloud, first).items() if split == "regression"}
    assert frozen, "with 40 % some of 16 images are in the regression set"
    # a dispute on a regression member keeps it there; on a train member it leaves the dataset
    with cloud.svc.sessions() as s:
        rows = datasets.members_of(s, first)
    reg_label = next(lb.id for m, lb, _ in rows if m.split == "regression")
    train_label = next((lb.id for m, lb, _ in rows if m.split == "train"), None)
    for lid in filter(None, (reg_label, train_label)):
        r = cloud.http.post(
            f"/v1/labels/{lid}/dispute", json={"reason": "check it"}, headers=cloud.login("qa")
        )
        assert r.status_code == 200, r.text
    populate(cloud, 6, 0, seed=500)
    second, created = snapshot(cloud, val_percent=10, regression_percent=0)
    assert created
    later = members(cloud, second)
    assert frozen <= {sha for sha, (split, _) in later.items() if split == "regression"}
    assert reg_label in {lid for _, lid in later.values()}
    if train_label is not None:
        assert train_label not in {lid for _, lid in later.values()}
    third, _ = snapshot(cloud, val_percent=30, regression_percent=5)
    regression_3 = {
        sha for sha, (split, _) in members(cloud, third).items() if split == "regression"
    }
    assert frozen <= regression_3


def test_export_is_what_the_trainers_read(cloud: LoopCloud, tmp_path: Path) -> None:
    from edge.vision.defects.data import list_labelled, load_labelled
    from edge.vision.ocr.crnn.data import load_labelled as load_lines

    populate(cloud, 12, 10)
    fields_only = cloud.upload(png(77)).id
    label(cloud, fields_only, {"kind": "code", "fields": {"gtin": "06901234567892", "lot": "L77"}})
    ds, _ = snapshot(cloud, val_percent=25, regression_percent=25)
    out = tmp_path / "export" / ds
    with cloud.svc.sessions() as s:
        manifest = datasets.export(s, ds, LocalBlobStore(cloud.tmp / "blobs"), out)
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk == json.loads(json.dumps(manifest)) and on_disk["id"] == ds
    assert on_disk["format"] == 1 and len(on_disk["members"]) == 23
    import hashlib

    for m in on_disk["members"]:  # every file is there, with the bytes of its hash
        assert hashlib.sha256((out / m["file"]).read_bytes()).hexdigest() == m["sha256"]
        assert m["file"].startswith(("codes/" if m["kind"] == "code" else "defects/") + m["split"])

    code_members = [m for m in on_disk["members"] if m["kind"] == "code"]
    n_lines = 0
    for split in datasets.SPLITS:
        folder = out / "codes" / split
        if not folder.is_dir():
            continue
        lines = load_lines(folder)  # the CRNN trainer's own reader of --data
        jsonl = [json.loads(x) for x in (folder / "labels.jsonl").read_text().splitlines()]
        texts = {j["file"]: j["text"] for j in jsonl}
        assert sorted(lines.texts) == sorted(t for t in texts.values() if t)
        n_lines += len(lines)
    assert n_lines == 12 and len(code_members) == 13  # the fields-only label is not a line
    fo = next(m for m in code_members if m["sample"] == fields_only)
    assert fo["value"] == "" and fo["fields"]["lot"] == "L77"

    n_frames = 0
    for split in datasets.SPLITS:
        folder = out / "defects" / split
        if not folder.is_dir():
            continue
        found = list_labelled(folder, DEFECT_CLASSES)  # train-defect --data's reader
        boxes = [json.loads(x) for x in (folder / "boxes.jsonl").read_text().splitlines()]
        assert sorted(p.relative_to(folder).as_posix() for p, _ in found) == sorted(
            b["file"] for b in boxes
        )
        for path, idx in found:
            assert path.parent.name == DEFECT_CLASSES[idx]
        frames = load_labelled(folder, DEFECT_CLASSES, (64, 64))
        n_frames += len(frames)
    assert n_frames == 10

    with cloud.svc.sessions() as s, pytest.raises(FileExistsError):
        datasets.export(s, ds, LocalBlobStore(cloud.tmp / "blobs"), out)


def test_dataset_cli(cloud: LoopCloud, tmp_path: Path) -> None:
    from edge.cli import cli

    populate(cloud, 4, 3)
    env = {
        "DOCKGATE_CLOUD_DATABASE_URL": cloud.svc.config.database_url,
        "DOCKGATE_CLOUD_ISSUING_DIR": str(cloud.svc.config.issuing_dir),
        "DOCKGATE_CLOUD_BLOB_DIR": str(cloud.svc.config.blob_dir),
    }
    runner = CliRunner()
    made = runner.invoke(cli, ["cloud", "dataset", "create", "--note", "round 1"], env=env)
    assert made.exit_code == 0, made.output
    ds = made.output.split()[0]
    again = runner.invoke(cli, ["cloud", "dataset", "create", "--note", "round 1"], env=env)
    assert again.output.split()[0] == ds and "unchanged" in again.output
    listed = runner.invoke(cli, ["cloud", "dataset", "list", "--json"], env=env)
    assert listed.exit_code == 0 and json.loads(listed.output.splitlines()[0])["id"] == ds
    out = tmp_path / "ds"
    exported = runner.invoke(cli, ["cloud", "dataset", "export", ds, str(out)], env=env)
    assert exported.exit_code == 0, exported.output
    assert "7 images" in exported.output and (out / "manifest.json").is_file()
    twice = runner.invoke(cli, ["cloud", "dataset", "export", ds, str(out)], env=env)
    assert twice.exit_code != 0 and "not an empty folder" in twice.output
    unknown = runner.invoke(
        cli, ["cloud", "dataset", "export", "000000000000", str(tmp_path / "x")], env=env
    )
    assert unknown.exit_code != 0 and "no dataset" in unknown.output


def test_exported_lines_use_only_what_the_crnn_can_learn() -> None:
    """The export keeps a line for the CRNN when every character is in the grammar's charset;
    that holds only while the CRNN's classes are exactly those characters."""
    from edge.codes import CHARSET
    from edge.vision.ocr.crnn.charset import CHARACTERS

    assert set(CHARSET) == set(CHARACTERS)
