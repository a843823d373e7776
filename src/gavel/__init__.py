"""gavel: build, run and benchmark small LLM judges."""

from gavel.judge.engine import Judge
from gavel.judge.records import JudgeRecord, Rubric, Task
from gavel.judge.result import JudgeResult, Mode, Status

__all__ = ["Judge", "JudgeRecord", "JudgeResult", "Mode", "Rubric", "Status", "Task"]
__version__ = "0.1.0"
