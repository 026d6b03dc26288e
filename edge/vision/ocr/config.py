"""The ``[ocr]`` section of the edge config: the carton-code reader's knobs."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from edge.contracts.settings import StrictModel

Recognizer = Literal["ppocr", "crnn", "both", "cascade"]

# Per recogniser: its temperature, fitted on calibration sets generated with another seed than
# bench/ocr.py's (5000000; 20, then 40 frames per smudge bucket 0-50 %; recogniser outputs
# cached, decoder and gate re-run per setting). The rule: no wrong ACCEPTED, and the most
# confident wrong read well below accept_threshold (0.85). Figures: ACCEPTED and right without /
# with an ASN, most confident wrong read.
# - ppocr: 1.75. First 1.5 (120 frames: 10.8 % / 27.5 %, 0.64; 1.0 read more, 14.2 / 29.2 %, but
#   a wrong read reached 0.84). On 1,800 frames (300 per bucket) 1.5 accepted one wrong read in
#   each mode (6.7 % / 16.4 %), 1.75 none (5.2 % / 14.1 %; most confident wrong read 0.91 open,
#   stopped by the gate's other rules), 2.0 none either but reads far less (1.6 % / 10.0 %).
# - crnn: 1.5 for crnn-2026.12.06-s3. First 1.0 (240 frames: 7.1 % / 29.6 %, 0.72 open and
#   0.58 ASN; 1.5 read 1.2 % / 24.2 %). evidence_weight 0 would read more (33.3 % ASN) but
#   accepted one wrong read at 0.96, so it stays 0.5 for both. On 1,800 frames 1.0 accepted five
#   wrong reads without an ASN (8.3 % / 24.8 %, most confident 0.96), 1.25 two (4.9 / 22.8 %),
#   1.5 none (1.1 / 18.9 %, most confident wrong read 0.76): the CRNN is over-confident too.
# - crnn: 1.6 since crnn-2026.12.07-s5, refitted on the same 1,800 frames: 1.25 accepted one
#   wrong read open and two with an ASN (8.7 % / 27.6 %), 1.5 one in each mode (3.6 / 24.4 %:
#   lot '01842' for '018422', its last digit taken into a '(17)' read as '117)', at 0.87; and the
#   ASN's look-alike 'V25EB75' for 'V25E875' at 0.86), 1.6 none (2.2 / 21.9 %), 1.7 none (0.6 /
#   18.9 %), 1.75 none (0.1 / 17.6 %). (Its predecessor s4, not shipped, met the rule at 1.5.)
# - crnn: 1.6 for crnn-2026.12.07-s6 too. Refitted on the same 1,800 frames: 1.4 accepted one
#   wrong read with an ASN (7.6 % / 27.7 %), 1.5 none (4.9 / 26.1 %; most confident wrong read
#   0.93 open, stopped by the gate's other rules), 1.6 none (3.0 / 23.8 %), 1.7 none (1.5 /
#   21.9 %), 1.8 none (0.1 / 18.8 %). But on bench/ocr.py's seed 7000000 (1,800 frames) 1.5
#   accepted a wrong prod date with an ASN ('(11)260702' for 250702, at 0.875), 1.6 none (4.2 /
#   21.6 %): a rule met one step from a wrong read on another seed has no margin.
# - ppocr: 1.9 since 2026-12-07, refitted with a second calibration seed (5100000, 1,800 frames;
#   the reader reading the strips beside the code and the loose-digit rule): 1.75 accepted two
#   wrong lots without an ASN there, both an O read as a zero ('APPLPT09' for 'APPLPTO9' at 0.88,
#   '8B0034PDP9NRW' at 0.89; 5.6 % / 14.1 %), 1.9 none (3.4 / 11.7 %); on 5000000 1.75 and 1.9
#   accept none (5.1 / 14.9 % and 3.0 / 12.9 %).
# - crnn (s6) on the second seed at 1.6: none (3.7 / 25.3 %).
# - both, cascade: PP-OCR's value (not calibrated on their own).
TEMPERATURE: dict[str, float] = {"ppocr": 1.9, "crnn": 1.6, "both": 1.9, "cascade": 1.9}

# Per recogniser: the twin margin (OcrConfig.twin_margin), fitted on the calibration seed's frames
# (5000000, 300 per smudge bucket 0-50 %): for every look-alike variant of each carton's true lot
# (one character swapped within 0/O/D/Q, 1/I/L or 5/S), the natural log of how much more likely
# the recogniser's output at its temperature makes the true lot than the variant. A variant that
# beats the truth by more than the margin is a wrong read the margin would let through. The rule:
# the margin is the worst such log-odds seen plus 3 (twenty times the odds).
# - crnn: 7.2 for crnn-2026.12.07-s6 (7,725 variant pairs on 1,639 frames whose lot has a
#   look-alike character): the worst variant beat the truth by 4.13 ('RGH0F' for 'RGHQF', 30 %
#   smudge); 10 beat it by more than 3, 2 by more than 4. The truth beat 32 % of the variants by
#   7 or more (far more at low smudge).
# - ppocr: 9.8 at 1.75. PP-OCR reads a leading 'L' as '1' with conviction: 'L260704' as '1260704' by
#   6.71 at 0 % smudge, 'L220302' by 5.68; 7 variants beat the truth by more than 5. The truth
#   beat 1 % of the variants by 10 or more: PP-OCR's twins still go to REVIEW, nearly all of them.
#   At its temperature 1.9 (2026-12-07), refitted: the worst variant beat the truth by 6.17
#   (the same 'L260704'), so 9.2; the truth beat 3 % of the variants by 9 or more.
# - both, cascade: not fitted (two recognisers' evidence adds up): every twin goes to REVIEW.
NEVER = 1e9
TWIN_MARGIN: dict[str, float] = {"ppocr": 9.2, "crnn": 7.2, "both": NEVER, "cascade": NEVER}

# Per recogniser: the bar a production date or SSCC must reach on its own
# (OcrConfig.optional_threshold). An ASN confirms GTIN, lot and expiry, not these: with an ASN
# the read's confidence is the match's for those three and the optional fields' own for the
# rest, so a misread prod date can ride through on the strength of a confirmed lot (CRNN s7,
# not shipped, accepted two at 0.857 and 0.88 on bench seed 7000000). Fitted with
# `bench/ocr.py --optional-bars` on two calibration seeds' frames (5000000 and 5100000, 300
# per smudge bucket 0-50 %) at the recogniser's temperature: the bar is the most confident
# misread prod date or SSCC that no other rule stops, plus 0.03, and never below
# accept_threshold.
# - crnn (s6) and ppocr: no such read on either seed (the most confident misread prod dates,
#   0.90 and 0.86 for the CRNN, 0.70 for PP-OCR, were all stopped by other rules), so the bar
#   is accept_threshold's. Raising it costs
#   (CRNN, ASN, ACCEPTED and right): 0.90 -0.9 to -1.5 points, 0.95 -6 points.
# - both, cascade: not fitted; accept_threshold's.
OPTIONAL_THRESHOLD: dict[str, float] = {"ppocr": 0.85, "crnn": 0.85, "both": 0.85, "cascade": 0.85}


class OcrConfig(StrictModel):
    accept_threshold: float = Field(
        0.85,
        ge=0.5,
        le=0.9999,
        description="confidence from which a read is ACCEPTED; below it a parsed read is REVIEW",
    )
    # ppocr stays the default after crnn-2026.12.06-s3. bench/ocr.py, 600 frames, one run:
    # PP-OCR 18.0 % ASN cartons ACCEPTED and right, 6.3 % without ASN, 3 wrong, 107 CPU ms per
    # frame; cascade 24.5 % / 8.2 %, 1 wrong, 110 ms; CRNN alone 20.0 % / 1.2 %, 1 wrong, 32 ms.
    # It still does after the CRNN's own temperature, the locate smear fix and the label check
    # (bench/ocr.py --frames 40 --threads 1, seed 4000000): CRNN 29.6 % / 8.8 %, 1 wrong (a
    # prod-date line lost under tape, ASN); PP-OCR 17.9 % / 6.2 %, 1 wrong (a lot's head lost
    # under a smear, no ASN). The CRNN reads more but is not yet better on wrong ACCEPTED, and
    # it still misreads carton artwork: "KEEP DRY" no longer outvotes the lot (a made-up label
    # is not read), but "THIS SIDE UP" comes out "TH8SIDEUP", whose digit sends a clean label
    # to REVIEW (PP-OCR reads both). After crnn-2026.12.07-s5 (at its 1.6), bench/ocr.py seed
    # 4000000, 600 frames, 0 wrong each: CRNN 20.2 % / 1.8 %, PP-OCR 11.7 % / 4.8 % with / without
    # an ASN. The CRNN reads more with an ASN and less without, at half the time, but it has seen
    # generated lines only, and the reader is judged on real photos: PP-OCR stays the default.
    recognizer: Recognizer = Field(
        "ppocr",
        description="line recogniser: PP-OCRv6 small (ocr.rec), Dockgate's own CRNN "
        "(ocr.crnn), both (each line read by both, the reads fused: agreement raises "
        "confidence), or cascade (the CRNN, and PP-OCR too when the CRNN's read is not "
        "ACCEPTED)",
    )
    threads: int = Field(
        2, ge=1, le=16, description="onnxruntime intra-op threads for the recogniser"
    )
    squeeze: float = Field(
        0.7,
        ge=0.5,
        le=1.2,
        description="horizontal scale of line crops before recognition (measured best 0.65-0.8)",
    )
    asn_other_weight: float = Field(
        0.1,
        gt=0.0,
        le=1.0,
        description="prior weight of values not on the ASN when an ASN is given (1 = no prior)",
    )
    temperature: float | None = Field(
        None,
        ge=1.0,
        le=4.0,
        description="temperature applied to the recogniser's probabilities before confidences "
        "(default: the recogniser's calibrated value, TEMPERATURE)",
    )
    lot_lookalike: float = Field(
        0.0,
        ge=0.0,
        le=0.5,
        description="share of a look-alike character's probability (0/O, 8/B, 5/S, ...) "
        "spread over its group before a lot's confidence is computed",
    )
    twin_margin: float | None = Field(
        None,
        ge=0.0,
        le=NEVER,
        description="with an ASN that lists look-alike lots for one GTIN and expiry (0/O, 1/I/L, "
        "5/S: '1907' and '19O7'), how much more likely (natural log of the odds) the print must "
        "make the read lot than each twin before the read may be ACCEPTED (default: the "
        "recogniser's calibrated margin, TWIN_MARGIN; 1e9: such reads always go to REVIEW)",
    )
    optional_threshold: float | None = Field(
        None,
        ge=0.5,
        le=0.9999,
        description="confidence a production date or SSCC must reach on its own before the "
        "read may be ACCEPTED; no ASN line confirms these fields (default: the recogniser's "
        "calibrated bar, OPTIONAL_THRESHOLD)",
    )
    evidence_weight: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="how much a field's poor fit to its grammar lowers its confidence (0..1)",
    )
    repair_cap: float = Field(
        0.8,
        ge=0.0,
        le=1.0,
        description="highest confidence of a GTIN or SSCC whose check digit could only be "
        "repaired by changing a digit the recogniser read clearly (it misread the field; a lost "
        "digit repairs as easily as a misread one)",
    )
    max_image_pixels: int = Field(
        40_000_000,
        ge=1_000_000,
        le=400_000_000,
        description="larger images are refused as IMAGE_INVALID (decompression-bomb guard)",
    )
    samples_dir: Path | None = Field(
        None, description="review/unreadable sample store; default <device.data_dir>/ocr-samples"
    )
    samples_max_mb: int = Field(
        200, ge=1, le=100_000, description="disk cap of the sample store; oldest dropped first"
    )

    @property
    def calibrated_twin_margin(self) -> float:
        """The twin margin in effect: the set value, else the recogniser's calibrated one."""
        return self.twin_margin if self.twin_margin is not None else TWIN_MARGIN[self.recognizer]

    @property
    def calibrated_optional_threshold(self) -> float:
        """The optional fields' bar in effect: the set value, else the recogniser's fitted one;
        never below ``accept_threshold``."""
        bar = self.optional_threshold
        if bar is None:
            bar = OPTIONAL_THRESHOLD[self.recognizer]
        return max(bar, self.accept_threshold)

    @property
    def calibrated_temperature(self) -> float:
        """The temperature in effect: the set value, else the recogniser's calibrated one."""
        return self.temperature if self.temperature is not None else TEMPERATURE[self.recognizer]
