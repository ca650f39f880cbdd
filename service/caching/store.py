"""A bounded store of encoded answers, least recently used out first."""

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Answer:
    body: bytes
    media_type: str


class AnswerStore:
    """At most `max_bytes` of bodies per process (0 stores nothing). Not shared between
    processes: each keeps what it computed; the versions keep them all correct."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._answers: OrderedDict[str, Answer] = OrderedDict()

    def get(self, key: str) -> Answer | None:
        answer = self._answers.get(key)
        if answer is not None:
            self._answers.move_to_end(key)
        return answer

    def put(self, key: str, answer: Answer) -> None:
        size = len(answer.body)
        if size > self.max_bytes // 8:  # one answer may not push out most of the others
            return
        old = self._answers.pop(key, None)
        if old is not None:
            self.bytes -= len(old.body)
        self._answers[key] = answer
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, dropped = self._answers.popitem(last=False)
            self.bytes -= len(dropped.body)

    def clear(self) -> None:
        """Forget every answer (the data was changed behind the service's back)."""
        self._answers.clear()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._answers)
