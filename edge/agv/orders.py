"""Build VDA 5050 order and instant-action bodies (no header) from a route on the site map.

A route is stored as the list of ids in ``sequenceId`` order: nodes at even indices, the edges
between them at odd ones (``[n0, e1, n1, e2, n2, ...]``), so index == sequenceId for the whole
life of an order, as the specification requires for stitching.
"""

from __future__ import annotations

import uuid
from typing import Any

from edge.agv.messages import Action, ActionParameter, Edge, Node, NodePosition
from edge.agv.sitemap import SiteMap

ALLOWED_DEVIATION_XY = 0.5  # metres: how close the AGV must stop to a node
ALLOWED_DEVIATION_THETA = 0.35  # radians


def build_route(sitemap: SiteMap, agv_node: str, from_node: str, to_node: str) -> list[str]:
    """AGV position -> pick-up node -> drop node, as alternating node and edge ids."""
    route = [agv_node]
    for hop in [*sitemap.route(agv_node, from_node), *sitemap.route(from_node, to_node)]:
        route += [hop.edge.id, hop.node]
    return route


def last_base(route_len: int, start: int, base_nodes: int) -> int:
    """sequenceId of the last released node when releasing ``base_nodes`` nodes from ``start``."""
    return min(start + 2 * (base_nodes - 1), route_len - 1)


def _action(order_id: str, kind: str, carton_id: str, station: str) -> Action:
    return Action(
        action_type=kind,
        action_id=f"{order_id}-{kind}",
        blocking_type="HARD",
        action_parameters=[
            ActionParameter(key="loadId", value=carton_id),
            ActionParameter(key="stationName", value=station),
        ],
    )


def order_body(
    sitemap: SiteMap,
    route: list[str],
    start: int,
    released_upto: int,
    order_id: str,
    order_update_id: int,
    carton_id: str,
    from_node: str,
    max_nodes: int | None = None,
) -> dict[str, Any]:
    """Order fields from ``start`` (0, or the previous decision point for an update) to the end.

    Nodes after ``released_upto`` form the horizon (``released`` false); with ``max_nodes``
    (the AGV's factsheet ``maxArrayLens['order.nodes']``) the horizon is cut short. The pick
    action sits on the first visit of ``from_node``, the drop action on the last node.
    """
    pick_seq = route[::2].index(from_node) * 2
    drop_seq = len(route) - 1
    end = drop_seq if max_nodes is None else min(drop_seq, start + 2 * (max_nodes - 1))
    nodes: list[Node] = []
    edges: list[Edge] = []
    for seq in range(start, end + 1):
        released = seq <= released_upto
        if seq % 2 == 0:
            mnode = sitemap.nodes[route[seq]]
            actions = []
            if seq == pick_seq:
                actions.append(_action(order_id, "pick", carton_id, from_node))
            if seq == drop_seq:
                actions.append(_action(order_id, "drop", carton_id, route[seq]))
            nodes.append(
                Node(
                    node_id=mnode.id,
                    sequence_id=seq,
                    released=released,
                    node_position=NodePosition(
                        x=mnode.x,
                        y=mnode.y,
                        theta=mnode.theta,
                        map_id=sitemap.map_id,
                        allowed_deviation_x_y=ALLOWED_DEVIATION_XY,
                        allowed_deviation_theta=ALLOWED_DEVIATION_THETA,
                    ),
                    actions=actions,
                )
            )
        elif seq > start:
            # An edge is released only when both its nodes are (spec 6.6.2): true by construction
            # because released_upto is always a node index.
            edges.append(
                Edge(
                    edge_id=route[seq],
                    sequence_id=seq,
                    released=released,
                    start_node_id=route[seq - 1],
                    end_node_id=route[seq + 1],
                    actions=[],
                )
            )
    return {
        "orderId": order_id,
        "orderUpdateId": order_update_id,
        "nodes": [n.wire() for n in nodes],
        "edges": [e.wire() for e in edges],
    }


def instant_body(action_type: str, **parameters: Any) -> tuple[str, dict[str, Any]]:
    """``(actionId, instantActions fields)`` for one instant action."""
    action_id = f"{action_type}-{uuid.uuid4()}"
    action = Action(
        action_type=action_type,
        action_id=action_id,
        blocking_type="HARD" if action_type == "cancelOrder" else "NONE",
        action_parameters=[ActionParameter(key=k, value=v) for k, v in parameters.items()],
    )
    return action_id, {"actions": [action.wire()]}
