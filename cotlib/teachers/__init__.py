"""Step 1 of Fine-tune-CoT: teachers that produce Zero-shot-CoT rationales.

`base`: the interface every teacher answers; `recorded`: the logged text-davinci-002 outputs;
`api`: any OpenAI-compatible endpoint (`local`: a llama.cpp server on 127.0.0.1); `hf`: a
transformers causal LM in-process; `run`: asking a teacher for D rationales per question,
resumably; `report`: tables of finished runs. Training reads teacher text only through
`cotlib.sources`.
"""
from .api import LOCAL_URL, OpenAITeacher, RequestFailed, RetryableError, local_teacher
from .base import (Budget, Choice, GenerationParams, Request, Result, Teacher, Usage, accuracy,
                   seed_for)
from .hf import HFTeacher, cut_at_stop
from .recorded import (CHOICE_MENTION, RECORDED_TEACHER, LogRecord, RecordedCompletion,
                       accuracy_of_recorded, log_path, question_key, read_log, recorded,
                       recorded_completions)
from .report import busy_seconds, diversity, run_summary, update_table
from .run import (TEACHER_KINDS, RunSummary, consolidate, generate, load_run, make_teacher,
                  rescore, run_file, run_tasks, teacher_name)
