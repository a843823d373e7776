"""Binary factuality / faithfulness benchmarks (LLM-AggreFact-style stand-ins) from local raw files.

Each record asks a Yes/No question about one short text (a claim, an answer sentence, a summary sentence,
an answer segment or a whole summary). Grounded sets put the evidence into ``instruction`` between
``\"\"\"`` fences, so the judge sees the document, then the request the response answers.

Binarisation rules (documented per loader):

- ``factcheck-gpt``: claim level, human ``claims_factuality_label`` (True -> Yes, False -> No;
  "unknown" dropped).
- ``lfqa-verification``: majority of 3 annotators, ``partially`` counted as not supported.
- ``qags``: majority of 3 MTurk yes/no votes per summary sentence.
- ``felm``: per-segment human label (True -> Yes).
- ``faithbench``: worst label over annotators; Consistent/Benign -> Yes, Questionable/Unwanted -> No.
"""

from __future__ import annotations

import csv
import json
from typing import Any

from gavel.bench.loaders._util import build_records
from gavel.bench.registry import LoadContext, register
from gavel.io import read_jsonl
from gavel.judge.records import LoadedRow
from gavel.labels import Task

_SUPPORT_RUBRIC = {
    "objective": "Is all of the information in the response supported by the {source} given in the "
    "instruction?",
    "yes": "Every statement in the response is stated in or directly follows from the {source}.",
    "no": "The response states something that is contradicted or not supported by the {source}.",
}


def support_rubric(source: str) -> dict[str, str]:
    """The grounded-support rubric, naming the evidence (e.g. ``"documents"``, ``"article"``)."""
    return {key: text.format(source=source) for key, text in _SUPPORT_RUBRIC.items()}


def fenced(title: str, text: str) -> str:
    """A block of text under a title, delimited so the judge can tell where it ends."""
    return f'{title}:\n"""\n{text.strip()}\n"""'


def _so_far(title: str, parts: list[str], what: str) -> str:
    """Context block for a piece judged in the middle of a longer text (empty for the first piece)."""
    if not parts:
        return ""
    return f"\n\n{fenced(title, ' '.join(parts))}\n\nThe response is the next {what}."


# --- Factcheck-GPT -------------------------------------------------------------------------------

_FACTCHECK_RUBRIC = {
    "objective": "Is the response (one claim taken from an assistant's answer to the instruction) "
    "factually correct?",
    "yes": "The claim is factually correct: everything it states is true.",
    "no": "The claim states something false or wrong.",
}


def _numbered(mapping: dict[str, Any], prefix: str) -> list[tuple[int, Any]]:
    """``{"sentence2": .., "sentence10": ..}`` as ``[(2, ..), (10, ..)]`` in numeric order."""
    return sorted((int(key.removeprefix(prefix)), value) for key, value in mapping.items())


@register(
    "factcheck-gpt",
    Task.classification,
    "Factcheck-GPT: is each atomic claim of a ChatGPT answer factually correct (human labels, closed-book)",
    subsets_field=None,
)
def load_factcheck_gpt(ctx: LoadContext) -> list[LoadedRow]:
    """Claim-level labels from ``factcheck-GPT-benchmark.jsonl``.

    Claim level is the closest to LLM-AggreFact's "is this claim supported" framing (an atomic claim with
    a binary label); the response-level label is too coarse (one verdict per long answer, 24 True / 68
    False). These are the same 631 labelled claims as ``subtask4_claim_factuality.jsonl`` but carry the
    user's question, which we give as the instruction. The human labels are world-knowledge factuality
    (annotators used web evidence), so no grounding document is attached; claims labelled "unknown"
    (not enough evidence) are dropped.
    """
    path = ctx.path("factcheck-gpt", "factcheck-GPT-benchmark.jsonl")
    records = []
    for row_no, row in enumerate(read_jsonl(path), 1):
        for sent_no, sentence in _numbered(row["sentences"], "sentence"):
            for claim_no, (claim, label) in enumerate(
                zip(sentence["claims"], sentence["claims_factuality_label"], strict=True), 1
            ):
                if not isinstance(label, bool) or not claim.strip():
                    continue
                records.append(dict(
                    id=f"r{row_no}.s{sent_no}.c{claim_no}", task="classification",
                    instruction=row["prompt"].strip(), response=claim.strip(), rubric=_FACTCHECK_RUBRIC,
                    label=label, sentence=sentence["text"],
                ))
    return build_records(records, str(path))


# --- LFQA-Verification ---------------------------------------------------------------------------

LFQA_SYSTEMS = ("webgpt", "gpt3", "gpt3_wdoc", "gpt3_whudoc", "alpaca", "alpaca_wdoc")


def lfqa_supported(labels: list[str]) -> bool:
    """Majority of the annotators say ``supported``; ``partially`` counts as not supported."""
    return sum(label == "supported" for label in labels) * 2 > len(labels)


def _lfqa_documents(docs: list[dict[str, str]]) -> str:
    blocks = (f"[{i}] {doc['title'].strip()}\n{doc['text'].strip()}" for i, doc in enumerate(docs, 1))
    return "\n\n".join(blocks)


@register(
    "lfqa-verification",
    Task.classification,
    "LFQA-Verification: is each long-form answer sentence supported by the WebGPT evidence documents",
    subsets_field="subset",
)
def load_lfqa_verification(ctx: LoadContext) -> list[LoadedRow]:
    """One record per annotated answer sentence (3993), judged against ``docs-webgpt.json``.

    The repo's attribution evaluation pairs every answer file with the WebGPT documents, so we do too.
    Gold: Yes when at least 2 of the 3 annotators say ``supported`` (``partially`` = not supported, as in
    LLM-AggreFact). ``subset`` is the answering system / condition.
    """
    docs = json.loads(ctx.path("lfqa-verification", "data", "docs", "docs-webgpt.json").read_text("utf-8"))
    docs_by_id = {item["question_id"]: item["docs"] for item in docs}
    records = []
    for system in LFQA_SYSTEMS:
        path = ctx.path("lfqa-verification", "data", "annotations", f"annotations-{system}.json")
        for item in json.loads(path.read_text("utf-8")):
            instruction = (f"{fenced('Documents', _lfqa_documents(docs_by_id[item['question_id']]))}\n\n"
                           f"Question: {item['question'].strip()}")
            earlier: list[str] = []
            for sent_no, annotation in enumerate(item["annotations"], 1):
                sentence = annotation["answer"].replace("</s>", "").strip()
                if not sentence:
                    continue
                records.append(dict(
                    id=f"{system}/{item['question_id']}/{sent_no}", task="classification",
                    instruction=instruction + _so_far("The answer so far", earlier, "sentence of the answer"),
                    response=sentence, rubric=support_rubric("documents"),
                    label=lfqa_supported(annotation["labels"]),
                    subset=system, annotator_labels=list(annotation["labels"]),
                ))
                earlier.append(sentence)
    return build_records(records, "lfqa-verification")


# --- QAGS ----------------------------------------------------------------------------------------


@register(
    "qags",
    Task.classification,
    "QAGS (CNN/DM, XSum): is each summary sentence supported by the news article (majority of 3 MTurk votes)",
    subsets_field="subset",
)
def load_qags(ctx: LoadContext) -> list[LoadedRow]:
    """One record per summary sentence (714 CNN/DM + 239 XSum); gold = majority of the 3 yes/no votes."""
    records = []
    for subset in ("cnndm", "xsum"):
        for row_no, row in enumerate(read_jsonl(ctx.path("qags", "data", f"mturk_{subset}.jsonl")), 1):
            instruction = f"Summarize the news article.\n\n{fenced('Article', row['article'])}"
            earlier: list[str] = []
            for sent_no, item in enumerate(row["summary_sentences"], 1):
                votes = [vote["response"] for vote in item["responses"]]
                records.append(dict(
                    id=f"{subset}/{row_no}/{sent_no}", task="classification",
                    instruction=instruction + _so_far("The summary so far", earlier, "summary sentence"),
                    response=item["sentence"].strip(), rubric=support_rubric("article"),
                    label=votes.count("yes") * 2 > len(votes), subset=subset, votes=votes,
                ))
                earlier.append(item["sentence"].strip())
    return build_records(records, "qags")


# --- FELM ----------------------------------------------------------------------------------------

FELM_DOMAINS = ("wk", "science", "math", "reasoning", "writing_rec")

_FELM_RUBRIC = {
    "objective": "Is the response (one segment of an answer to the instruction) factually correct, free of "
    "knowledge, reasoning and calculation errors?",
    "yes": "The segment is correct: its facts, reasoning and calculations are all right.",
    "no": "The segment contains a factual, reasoning or calculation error.",
}


@register(
    "felm",
    Task.classification,
    "FELM: is each segment of a ChatGPT answer factually correct (5 domains, human labels, closed-book)",
    subsets_field="subset",
)
def load_felm(ctx: LoadContext) -> list[LoadedRow]:
    """One record per answer segment, with the question and the earlier segments as context.

    7 reasoning responses have more labels than segments (duplicated, sometimes conflicting annotation
    rounds); they are dropped, leaving 4388 of the 4470 labels. ``subset`` is the domain file stem.
    """
    records = []
    for domain in FELM_DOMAINS:
        for row in read_jsonl(ctx.path("felm", "data", "test", f"{domain}.jsonl")):
            segments, labels = row["segmented_response"], row["labels"]
            if len(segments) != len(labels):
                continue
            earlier: list[str] = []
            for seg_no, (segment, label) in enumerate(zip(segments, labels, strict=True), 1):
                if segment.strip():
                    records.append(dict(
                        id=f"{domain}/{row['index']}/{seg_no}", task="classification",
                        instruction=row["prompt"].strip() + _so_far("The answer so far", earlier,
                                                                    "segment of the answer"),
                        response=segment.strip(), rubric=_FELM_RUBRIC, label=bool(label),
                        subset=domain, prompt_source=row.get("source"),
                    ))
                    earlier.append(segment.strip())
    return build_records(records, "felm")


# --- FaithBench ----------------------------------------------------------------------------------

FAITHBENCH_FAITHFUL = {"Consistent": True, "Benign": True, "Questionable": False, "Unwanted": False}


@register(
    "faithbench",
    Task.classification,
    "FaithBench: is an LLM summary faithful to its source (expert worst label; Questionable/Unwanted = No)",
    subsets_field=None,
)
def load_faithbench(ctx: LoadContext) -> list[LoadedRow]:
    """800 summaries from ``FaithBench.csv``, gold from the worst label over annotators.

    Consistent and Benign (unsupported but harmless) count as faithful; Questionable and Unwanted as
    hallucinated, the FaithBench paper's binary split.
    """
    path = ctx.path("faithbench", "FaithBench.csv")
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return build_records([
        dict(
            id=str(row_no), task="classification",
            instruction=f"Summarize the text.\n\n{fenced('Text', row['source'])}",
            response=row["summary"].strip(), rubric=support_rubric("text"),
            label=FAITHBENCH_FAITHFUL.get(row["worst-label"], row["worst-label"]),
            summarizer=row["LLM"], worst_label=row["worst-label"], best_label=row["best-label"],
        )
        for row_no, row in enumerate(rows, 1)
    ], str(path))
