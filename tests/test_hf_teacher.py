"""The hf teacher with a tiny random Llama and a tokenizer built offline (no model hub)."""
import pytest
import torch
from test_students import unusable_model_dirs
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from cotlib.data import CotlibError
from cotlib.store import Store
from cotlib.tasks import get_task
from cotlib.teachers import GenerationParams, HFTeacher, generate, make_teacher

TASK = get_task("multiarith")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    corpus = [s.question for s in TASK.split("train")] + ["Let's think step by step."]
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<unk>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="</s>", unk_token="<unk>")
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
        eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.eos_token_id))
    path = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def run(path, tmp_path, name, **params):
    teacher = make_teacher("hf", str(path), batch_size=3)
    store = Store(tmp_path / f"{name}.jsonl")
    params = GenerationParams(max_tokens=12, answer_max_tokens=4, **params)
    summary = generate(teacher, TASK, store, params, limit=4, progress=False)
    return summary, sorted(store.load().records.values(), key=lambda r: r.key())


def test_greedy_is_batched_and_deterministic(tiny, tmp_path):
    summary, first = run(tiny, tmp_path, "a")
    _, again = run(tiny, tmp_path, "b")
    assert summary.done_now == 4 and summary.usage.requests == 8
    assert [r.rationale for r in first] == [r.rationale for r in again]
    assert all(r.completion_tokens > 0 and r.reasoning_finish_reason in ("stop", "length")
               for r in first)
    assert first[0].prompt.startswith(first[0].reasoning_prompt)


def test_sampling_is_seeded_and_diverse(tiny, tmp_path):
    _, first = run(tiny, tmp_path, "a", degree=2, temperature=1.0, seed=3)
    _, again = run(tiny, tmp_path, "b", degree=2, temperature=1.0, seed=3)
    assert len(first) == 8 and [r.rationale for r in first] == [r.rationale for r in again]
    assert len({r.rationale for r in first}) > 4


def test_teacher_is_named_after_its_directory(tiny):
    assert isinstance(make_teacher("hf", str(tiny)), HFTeacher)
    assert make_teacher("hf", str(tiny)).name == tiny.name


def test_cli_generate_with_the_hf_teacher(tiny, tmp_path):
    import subprocess
    import sys

    from conftest import PROJECT
    done = subprocess.run([sys.executable, "-m", "cotlib", "generate", "--teacher", "hf",
                           "--model", str(tiny), "--task", "svamp", "--limit", "3", "--D", "2",
                           "--T", "0.9", "--max-tokens", "8", "--answer-max-tokens", "3",
                           "--batch-size", "4", "--store-dir", str(tmp_path), "--no-progress"],
                          cwd=PROJECT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "svamp: 6 completions" in done.stdout


def test_a_folder_that_is_not_a_causal_lm_is_a_clear_error(tmp_path):
    for path in unusable_model_dirs(tmp_path):
        with pytest.raises(CotlibError, match=f"cannot load a causal LM from {path}: ") as e:
            make_teacher("hf", str(path))
        assert "\n" not in str(e.value)
