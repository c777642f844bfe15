"""The game's line protocol (UTF-8, one command per `\\n`-terminated line). Shared by server and bots.

Client -> server                      Server -> client
  JOIN <name>                           WELCOME <player-id> <tick-hz>   (session starts)
                                        REJECT full <online> <capacity> (then the server closes)
  INPUT <seq> <dx> <dy>                 STATE <tick> <last-seq> <x> <y> (at the next tick that applied it)
  LEAVE                                 BYE left                        (then the server closes)
  STATS                                 STATS online=<n> capacity=<n> cpu_request_m=<n> tick=<n>
  PING                                  PONG
  anything else                         ERR <reason>
The server may also send `BYE shutdown` or `BYE idle` before closing a session.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

MAX_LINE: Final = 256
"""Longest accepted line in bytes (including the newline); longer lines end the connection."""

JOIN: Final = "JOIN"
INPUT: Final = "INPUT"
LEAVE: Final = "LEAVE"
STATS: Final = "STATS"
PING: Final = "PING"

WELCOME: Final = "WELCOME"
REJECT: Final = "REJECT"
STATE: Final = "STATE"
BYE: Final = "BYE"
PONG: Final = "PONG"
ERR: Final = "ERR"


@dataclass(frozen=True)
class Stats:
    """The answer to STATS: what a matchmaker (or the real-plane load generator) needs to place players."""

    online: int
    capacity: int
    cpu_request_m: int
    tick: int

    def line(self) -> str:
        return (
            f"{STATS} online={self.online} capacity={self.capacity} "
            f"cpu_request_m={self.cpu_request_m} tick={self.tick}\n"
        )

    @classmethod
    def parse(cls, line: str) -> Stats:
        words = line.split()
        if not words or words[0] != STATS:
            raise ValueError(f"not a STATS reply: {line!r}")
        fields = dict(w.split("=", 1) for w in words[1:] if "=" in w)
        try:
            return cls(
                online=int(fields["online"]),
                capacity=int(fields["capacity"]),
                cpu_request_m=int(fields["cpu_request_m"]),
                tick=int(fields["tick"]),
            )
        except (KeyError, ValueError) as exc:
            raise ValueError(f"malformed STATS reply: {line!r}") from exc


def encode(*words: object) -> bytes:
    return (" ".join(str(w) for w in words) + "\n").encode()
