"""`votes export` and `leaderboard`: the vote store from the command line, with the page's numbers."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .leaderboard import EXPORT_FORMATS, Leaderboard, export_bytes, leaderboard
from .settings import Settings
from .store import Store
from .votes import VoteStore


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `votes` and `leaderboard` subcommands."""
    votes = sub.add_parser("votes", help="work with the stored A/B votes")
    actions = votes.add_subparsers(dest="votes_command", required=True)
    export = actions.add_parser("export", help="write the raw votes (without voter names) to a file")
    export.add_argument("--format", default="csv", help=f"{' or '.join(EXPORT_FORMATS)} (default csv)")
    export.add_argument("--out", required=True, metavar="FILE", help="the file to write")
    export.add_argument("--queue", help="only this queue's votes")

    board = sub.add_parser("leaderboard", help="Bradley–Terry ratings and win rates from the votes")
    board.add_argument("--queue", help="only this queue's votes")
    board.add_argument("--rounds", type=int, default=200, help="bootstrap rounds (default 200)")
    board.add_argument("--json", action="store_true", help="print one JSON object")


def cmd_votes(args: argparse.Namespace, settings: Settings) -> int:
    """`votes export`: the raw votes as CSV or Parquet."""
    if args.format not in EXPORT_FORMATS:
        raise ConfigError(f"unknown --format {args.format!r}; use {' or '.join(EXPORT_FORMATS)}")
    with Store(settings.database_url) as store:
        frame = VoteStore(store).votes_frame(args.queue)
    data = export_bytes(frame, args.format)
    try:
        Path(args.out).write_bytes(data)
    except OSError as exc:
        raise ConfigError(f"cannot write {args.out}: {exc.strerror or exc}; choose another --out") from exc
    print(f"wrote {len(frame)} votes to {args.out}")
    return 0


def cmd_leaderboard(args: argparse.Namespace, settings: Settings) -> int:
    """`leaderboard`: ratings with bootstrap intervals and win rates with 95% intervals."""
    if args.rounds < 1:
        raise ConfigError("--rounds must be at least 1")
    with Store(settings.database_url) as store:
        frame = VoteStore(store).votes_frame(args.queue)
    if frame.empty:
        print(json.dumps(board_json(None)) if args.json else "no votes yet")
        return 0
    board = leaderboard(frame, rounds=args.rounds)
    print(json.dumps(board_json(board), ensure_ascii=False) if args.json else board_text(board))
    return 0


def board_json(board: Leaderboard | None) -> dict[str, Any]:
    """The leaderboard as plain JSON values (NaN as null)."""
    if board is None:
        return {"votes": 0, "ratings": [], "win_rates": []}
    ratings = board.ratings.reset_index().to_dict(orient="records")
    rates = board.win_rates.to_dict(orient="records")
    return {"votes": board.votes, "ratings": _clean(ratings), "win_rates": _clean(rates)}


def _clean(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def value(v: Any) -> Any:
        if hasattr(v, "item"):
            v = v.item()
        return None if isinstance(v, float) and math.isnan(v) else v

    return [{k: value(v) for k, v in r.items()} for r in records]


def board_text(board: Leaderboard) -> str:
    """Two aligned tables: ratings, then win rates."""
    lines = [f"{board.votes} votes", "", f"{'system':16} {'rating':>8}  {'95% interval':>17}  {'games':>6}"]
    for system, r in board.ratings.iterrows():
        lines.append(f"{system:16} {r.rating:8.1f}  {r.lower:8.1f}–{r.upper:<8.1f}  {int(r.games):6d}")
    lines += ["", f"{'system':16} {'opponent':16} {'win rate':>8}  {'95% interval':>13}  {'games':>6}"]
    for r in board.win_rates.itertuples():
        lines.append(
            f"{r.system:16} {r.opponent:16} {r.win_rate:8.3f}  {r.lower:6.3f}–{r.upper:<6.3f}  {int(r.games):6d}"
        )
    return "\n".join(lines)


COMMANDS = {"votes": cmd_votes, "leaderboard": cmd_leaderboard}
