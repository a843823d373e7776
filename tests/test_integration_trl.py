"""gavel's judge as the reward of TRL's own GRPOTrainer, on CPU: 2 optimizer steps of the embedded SmolLM2.

The rewards TRL writes to its completions log must be the judge's expected scores for those completions, and a
completion whose verdict cannot be read must be NaN there (None from gavel), never 0.
"""

from __future__ import annotations

import asyncio
import math

import pandas as pd
import pytest

from gavel import Judge
from gavel.backends import load_backend
from gavel.judge.reward import reward_from_result
from gavel.labels import Status

pytestmark = pytest.mark.model

trl = pytest.importorskip("trl")

from gavel.integrations.trl import AsyncJudgeReward, JudgeReward  # noqa: E402

PROMPTS = ["What is 2 + 2? Answer with a number.", "Name a primary colour.",
           "Say hello in French.", "What is the capital of Italy?"]


@pytest.fixture(scope="module")
def llama():
    backend = load_backend(None, n_threads=1)
    yield backend
    backend.close()


def test_grpo_trainer_logs_the_judges_expected_scores_and_nan_for_unreadable_verdicts(
        llama, openai_server, tmp_path):
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from gavel.backends.embedded import embedded_hf_dir

    torch.manual_seed(0)
    torch.set_num_threads(1)
    policy_dir = embedded_hf_dir()
    tokenizer = AutoTokenizer.from_pretrained(policy_dir)
    policy = AutoModelForCausalLM.from_pretrained(policy_dir, dtype=torch.float32)

    scored = JudgeReward(Judge(llama, mode="verdict"), rubric="Is the answer correct and to the point?")
    # The same server model without logprobs, cut after 4 critique tokens: its verdicts cannot be read.
    unreadable_judge = Judge(load_backend(f"openai:smollm2@{openai_server}", logprobs=False), max_new_tokens=4)
    unreadable = AsyncJudgeReward(unreadable_judge, name="gavel_unreadable")

    args = GRPOConfig(output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=4, num_generations=2,
                      max_completion_length=8, learning_rate=1e-5, beta=0.0, logging_steps=1, log_completions=True,
                      report_to="none", save_strategy="no", use_cpu=True, seed=0, dataloader_num_workers=0)
    trainer = GRPOTrainer(model=policy, processing_class=tokenizer, reward_funcs=[scored, unreadable], args=args,
                          train_dataset=Dataset.from_dict({"prompt": PROMPTS * 2}))
    trainer.train()
    assert trainer.state.global_step == 2

    logged = pd.concat([pd.read_parquet(p) for p in sorted((tmp_path / "completions").glob("*.parquet"))])
    assert len(logged) == 8  # 2 steps x 4 completions
    fresh = Judge(llama, mode="verdict")  # no cache: the model itself, now
    for row in logged.itertuples():
        result = fresh.score(row.prompt, row.completion, rubric="Is the answer correct and to the point?")
        assert result.expected_score is not None
        assert row.gavel_absolute == pytest.approx((result.expected_score - 1) / 4, abs=1e-4)

    unread = logged["gavel_unreadable"]
    assert unread.isna().sum() >= 1 and not (unread == 0).any()
    for row in logged.itertuples():
        result = unreadable_judge.score(row.prompt, row.completion)
        if math.isnan(row.gavel_unreadable):
            assert result.status in (Status.parse_failed, Status.error)
        else:
            assert row.gavel_unreadable == pytest.approx(reward_from_result(result))
    assert logged["gavel_unreadable_critique"].notna().all()  # critique mode: critiques in TRL's log

    history = [entry for entry in trainer.state.log_history if "rewards/gavel_absolute/mean" in entry]
    assert len(history) == 2
    unread_shares = sum(e["gavel_unreadable/parse_failed"] + e["gavel_unreadable/error"] for e in history)
    assert unread_shares * 4 == pytest.approx(unread.isna().sum())  # log_metric: the share per step of 4
    unreadable_judge.backend.close()


def test_one_call_is_one_backend_stream_and_async_matches_sync(llama):
    batches = []  # requests per backend stream
    stream = llama.stream

    def counting(requests):
        requests = list(requests)
        batches.append(len(requests))
        return stream(iter(requests))

    llama.stream = counting
    try:
        prompts = [[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 3 + 4?"}]] * 3
        completions = [[{"role": "assistant", "content": text}] for text in ("7", "12", "seven")]
        pairwise = JudgeReward(Judge(llama, mode="verdict"), task="pairwise", reference_column="reference")
        rewards = pairwise(prompts, completions, reference=["7"] * 3, trainer_state=None)
        assert batches == [6]  # three completions, both orders, one stream
        direct = Judge(llama, mode="verdict", both_orders=True)
        for reward, completion in zip(rewards, ("7", "12", "seven"), strict=True):
            assert reward == pytest.approx(direct.compare("What is 3 + 4?", completion, "7").p_a, abs=1e-6)
        del batches[:]
        classify = AsyncJudgeReward(Judge(llama, mode="verdict"), task="classification", rubric_column="criterion")
        texts = ["Is the sum right?"] * 3
        async_rewards = asyncio.run(classify(prompts, completions, criterion=texts))
        sync_rewards = JudgeReward(Judge(llama, mode="verdict"), task="classification", rubric_column="criterion")(
            prompts, completions, criterion=texts)
        assert async_rewards == pytest.approx(sync_rewards, abs=1e-6)
        assert batches == [3, 3]
    finally:
        llama.stream = stream


def test_bad_arguments_are_refused(llama):
    with pytest.raises(ValueError, match="reference_column"):
        JudgeReward(Judge(llama), task="pairwise")
    reward = JudgeReward(Judge(llama, mode="verdict"), rubric_column="criterion")
    with pytest.raises(KeyError, match="criterion"):
        reward(["q"], ["a"])


def test_rows_that_cannot_be_judged_get_no_reward_and_a_warning_naming_row_and_field(llama, caplog):
    """A missing reference, an empty prompt, a chat prompt with no user turn: None for that completion, the
    others judged; a reference column shorter than the completions is a misuse, refused."""
    reward = JudgeReward(Judge(llama, mode="verdict"), task="pairwise", reference_column="reference")
    prompts = ["What is 3 + 4?", "", [{"role": "system", "content": "Be brief."}], "What is 3 + 4?"]
    metrics = {}
    with caplog.at_level("WARNING"):
        rewards = reward(prompts, ["7", "7", "7", "7"], reference=[None, "7", "7", "7"],
                         log_metric=metrics.__setitem__)
    assert rewards[:3] == [None, None, None] and 0.0 <= rewards[3] <= 1.0
    assert "gavel_pairwise, row 1, field 'reference': required for task 'pairwise': no reward" in caplog.text
    assert "gavel_pairwise, row 2, field 'instruction': must not be empty" in caplog.text
    assert "gavel_pairwise, row 3: no user message" in caplog.text
    assert metrics["gavel_pairwise/error"] == 0.75
    with pytest.raises(ValueError, match="column 'reference' holds 1 values, fewer than the completions"):
        reward(["q", "q"], ["a", "b"], reference=["x"])
