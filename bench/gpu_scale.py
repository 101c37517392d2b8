"""Throughput at the face protocol's scale: training images/s and attack reconstructions/s at 64 px.

    python bench/gpu_scale.py [--device auto] [--classes 1000] [--budget-s 270] [--quick]

The face target (``resnet18`` on 64×64 RGB, ``--classes`` identities) is trained by the pipeline's
own loop (``pipeline.train.fit``) and attacked by its PLG-MI attack (a conditional GAN of the
face profile's architecture, untrained: throughput does not depend on what the weights are), each
in fp32 and, on CUDA, under bf16 autocast. Images are random uint8: a throughput figure, not an
accuracy one. Each measurement runs after a warm-up, timed with the clock after a device sync.
Writes reports/bench/gpu_scale.json. ``--quick`` shrinks every size for a smoke run on a CPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from the repo root

import torch  # noqa: E402
import yaml  # noqa: E402

from bench.common import machine_info  # noqa: E402
from pipeline.attacks import AttackBudget, WhiteBoxTarget, create_attack  # noqa: E402
from pipeline.config import TrainConfig  # noqa: E402
from pipeline.data.parts import LabelledImages  # noqa: E402
from pipeline.io import atomic_write_json  # noqa: E402
from pipeline.models import ModelConfig, create_model  # noqa: E402
from pipeline.prior import PriorConfig  # noqa: E402
from pipeline.runtime import Runtime, RuntimeSection, resolve_runtime, use_runtime  # noqa: E402
from pipeline.target_gan.networks import ConditionalPrior, build_plgmi_networks  # noqa: E402
from pipeline.train import fit  # noqa: E402

SIZE, CHANNELS = 64, 3
FACE_PROFILE = Path(__file__).resolve().parents[1] / "profiles" / "celeba64.yaml"


def _sync(runtime: Runtime) -> None:
    if runtime.on_cuda:
        torch.cuda.synchronize(runtime.device)


def training_throughput(runtime: Runtime, classes: int, images: int, batch: int) -> dict[str, Any]:
    """Images per second of one epoch of ``fit`` (after a one-epoch warm-up on the same model)."""
    g = torch.Generator().manual_seed(0)
    data = LabelledImages(
        torch.randint(0, 256, (images, CHANNELS, SIZE, SIZE), dtype=torch.uint8, generator=g),
        torch.randint(0, classes, (images,), generator=g),
    )
    model = create_model(ModelConfig(arch="resnet18", num_classes=classes, in_channels=CHANNELS, image_size=SIZE))
    cfg = TrainConfig(epochs=1, batch_size=batch, optimizer="sgd", lr=0.01, schedule="none", augment="flip_shift")
    with use_runtime(runtime):
        fit(model, data, cfg, progress=False)  # warm-up: kernels chosen, memory allocated
        _sync(runtime)
        start = time.perf_counter()
        fit(model, data, cfg, progress=False)
        _sync(runtime)
    seconds = time.perf_counter() - start
    return {
        "images": images,
        "batch_size": batch,
        "seconds": round(seconds, 3),
        "images_per_s": round(images / seconds, 1),
    }


def face_gan_architecture() -> PriorConfig:
    """The PLG-MI GAN's architecture of the face profile (profiles/celeba64.yaml), at 64 px RGB."""
    section = yaml.safe_load(FACE_PROFILE.read_text())["target_gan"]["plgmi"]
    keys = ("latent_dim", "gen_width", "disc_width", "stages")
    return PriorConfig(image_size=SIZE, channels=CHANNELS, **{key: section[key] for key in keys})


def attack_throughput(runtime: Runtime, classes: int, attacked: int, budget: AttackBudget) -> dict[str, Any]:
    """Reconstructions (candidates optimised) per second of the PLG-MI attack on ``attacked`` classes."""
    model = create_model(ModelConfig(arch="resnet18", num_classes=classes, in_channels=CHANNELS, image_size=SIZE))
    arch = face_gan_architecture()
    gen, disc = build_plgmi_networks(arch, classes, None)
    prior = ConditionalPrior(gen, disc, arch, classes)
    attack = create_attack("plgmi")
    target = WhiteBoxTarget(model.eval())
    with use_runtime(runtime):
        small = AttackBudget(steps=2, restarts=budget.restarts, samples_per_class=budget.samples_per_class)
        attack.run(target, list(range(attacked)), small, seed=0, generator=prior)  # warm-up
        _sync(runtime)
        start = time.perf_counter()
        attack.run(target, list(range(attacked)), budget, seed=0, generator=prior)
        _sync(runtime)
    seconds = time.perf_counter() - start
    candidates = attacked * budget.restarts
    return {
        "classes_attacked": attacked, "steps": budget.steps, "candidates": candidates, "seconds": round(seconds, 3),
        "reconstructions_per_s": round(candidates / seconds, 2),
        "candidate_steps_per_s": round(candidates * budget.steps / seconds, 1),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (params.yaml runtime.device)")
    parser.add_argument("--classes", type=int, default=1000, help="identities the target tells apart")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run on a CPU")
    parser.add_argument("--out", default="reports/bench/gpu_scale.json")
    args = parser.parse_args(argv)
    base = resolve_runtime(RuntimeSection(device=args.device), source="--device")
    images, batch = (64, 32) if args.quick else (16384, 256)
    attacked, budget = (2, AttackBudget(5, 4, 1)) if args.quick else (300, AttackBudget(50, 5, 1))
    classes = min(args.classes, 10) if args.quick else args.classes
    rows = []
    for amp in ("fp32", "bf16") if base.on_cuda else ("fp32",):
        runtime = Runtime(base.device, amp=amp, channels_last=base.on_cuda)
        print(f"{runtime.device} {amp}: training ...", flush=True)
        train = training_throughput(runtime, classes, images, batch)
        print(f"  {train['images_per_s']} images/s; attacking ...", flush=True)
        attack = attack_throughput(runtime, classes, attacked, budget)
        print(f"  {attack['reconstructions_per_s']} reconstructions/s", flush=True)
        rows.append({"device": str(runtime.device), "amp": amp, "channels_last": runtime.channels_last,
                     "training": train, "attack": attack})  # fmt: skip
    report = {"machine": machine_info(), "image_size": SIZE, "classes": classes, "quick": args.quick, "rows": rows}
    atomic_write_json(args.out, report)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
