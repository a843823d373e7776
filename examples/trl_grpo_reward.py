"""GRPO with gavel's judge as the reward: TRL's GRPOTrainer on the embedded SmolLM2-135M (CPU, a few minutes).

    python examples/trl_grpo_reward.py [OUTPUT_DIR]

The reward is the judge's expected 1-5 score rescaled to [0, 1] (None, shown as NaN by TRL, when no verdict can
be read). Rewards are cached: a completion seen before is not judged again. Swap in your own policy, dataset and
judge (``JudgeReward("path/to/judge.gguf")``, ``JudgeReward("openai:selene@http://127.0.0.1:8080/v1")``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import GRPOConfig, GRPOTrainer

from gavel import Judge
from gavel.backends.embedded import embedded_hf_dir
from gavel.integrations.trl import JudgeReward

out = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/grpo-example")
prompts = ["What is 2 + 2? Answer with a number.", "Name a primary colour.", "Say hello in French.",
           "What is the capital of Italy?"]

policy_dir = embedded_hf_dir()  # the embedded SmolLM2-135M-Instruct as a transformers folder (converted once)
tokenizer = AutoTokenizer.from_pretrained(policy_dir)
policy = AutoModelForCausalLM.from_pretrained(policy_dir, dtype=torch.float32)

# gavel's default judge, verdict mode (one forward pass per completion), with a cache next to the run.
reward = JudgeReward(Judge(mode="verdict", cache=out / "judgments.db"),
                     rubric="Does the response answer the question correctly and briefly?")

args = GRPOConfig(output_dir=str(out), max_steps=2, per_device_train_batch_size=4, num_generations=2,
                  max_completion_length=16, learning_rate=1e-5, beta=0.0, logging_steps=1, log_completions=True,
                  report_to="none", save_strategy="no", use_cpu=True)
trainer = GRPOTrainer(model=policy, processing_class=tokenizer, reward_funcs=[reward], args=args,
                      train_dataset=Dataset.from_dict({"prompt": prompts * 2}))
trainer.train()
for entry in trainer.state.log_history:
    if "rewards/gavel_absolute/mean" in entry:
        print(f"step {entry['step']}: mean reward {entry['rewards/gavel_absolute/mean']:.3f}")
print(f"completions with their rewards: {out / 'completions'}")
