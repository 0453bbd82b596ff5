"""The trainer: any task, Adam/SGD, ReduceLROnPlateau on the validation metric, checkpoints every N
steps (model + optimizer + scheduler + step + config), resume, a JSONL metrics log, tqdm, a wall-clock
budget. Checkpoints hold only tensors and plain data: they load with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass, fields
from pathlib import Path

import torch
from tqdm import tqdm

from training.nets import build_model, model_config_dict


@dataclass
class OptimConfig:
    optimizer: str = "adam"          # "adam" or "sgd"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 2
    max_steps: int = 1000
    max_minutes: float = 0.0         # wall-clock budget; 0 = none
    checkpoint_every: int = 100
    validate_every: int = 100
    log_every: int = 10
    plateau_patience: int = 5        # validations without improvement before lr x plateau_factor
    plateau_factor: float = 0.1
    seed: int = 0
    threads: int = 0                 # torch threads; 0 = torch's default
    device: str = "auto"             # "auto" (CUDA when available), "cpu", "cuda", "cuda:1"...


def optim_config(config: dict) -> OptimConfig:
    values = dict(config.get("optim", {}))
    unknown = sorted(set(values) - {f.name for f in fields(OptimConfig)})
    if unknown:
        raise ValueError(f"unknown optim settings: {', '.join(unknown)}")
    return OptimConfig(**values)


def hardware() -> str:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads "
            f"({os.cpu_count()} CPUs), {gpu}, torch {torch.__version__}")


def make_optimizer(model: torch.nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                               weight_decay=cfg.weight_decay, nesterov=cfg.momentum > 0)
    raise ValueError(f"unknown optimizer '{cfg.optimizer}' (adam or sgd)")


def load_checkpoint(path) -> dict:
    return torch.load(Path(path), map_location="cpu", weights_only=True)


class Trainer:
    def __init__(self, task, config: dict, out_dir, command: str = "", progress_bar: bool = True) -> None:
        self.task, self.config = task, config
        self.cfg = optim_config(config)
        if self.cfg.threads:
            torch.set_num_threads(self.cfg.threads)
        torch.manual_seed(self.cfg.seed)
        self.model_name = config["model"]
        self.device = torch.device("cuda" if self.cfg.device == "auto" and torch.cuda.is_available()
                                   else "cpu" if self.cfg.device == "auto" else self.cfg.device)
        self.model = build_model(self.model_name, config.get("net", {})).to(self.device)
        task.device = self.device
        self.optimizer = make_optimizer(self.model, self.cfg)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, mode="max", factor=self.cfg.plateau_factor, patience=self.cfg.plateau_patience)
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.command, self.progress_bar = command, progress_bar
        self.step, self.wall_s, self.metrics, self.best = 0, 0.0, {}, None
        self.on_step = None          # callback(step, wall_s) after each step; may raise to stop (cancel)

    # Checkpoints
    def state(self) -> dict:
        return {"model_name": self.model_name, "net_config": model_config_dict(self.model),
                "config": self.config, "state_dict": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "step": self.step, "wall_time_s": self.wall_s, "metrics": self.metrics, "best": self.best,
                "task_state": self.task.state() if hasattr(self.task, "state") else {},
                "training": {"data": getattr(self.task, "data_description", {}), "steps": self.step,
                             "wall_time_s": round(self.wall_s, 1), "hardware": hardware(),
                             "command": self.command}}

    def save(self, name: str = "last.pt") -> Path:
        path = self.out / name
        tmp = path.with_suffix(".tmp")
        torch.save(self.state(), tmp)
        os.replace(tmp, path)
        return path

    def resume(self, path) -> None:
        ckpt = load_checkpoint(path)
        if ckpt["model_name"] != self.model_name:
            raise ValueError(f"checkpoint is a {ckpt['model_name']}, not a {self.model_name}")
        self.model.load_state_dict(ckpt["state_dict"])   # CPU tensors load into a model on any device
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.step, self.wall_s = int(ckpt["step"]), float(ckpt["wall_time_s"])
        self.metrics, self.best = dict(ckpt.get("metrics", {})), ckpt.get("best")
        if hasattr(self.task, "load_state"):
            self.task.load_state(ckpt.get("task_state") or {}, self.model)

    def init_weights(self, path) -> None:
        """Start from a trained checkpoint's weights (fine-tuning, e.g. a site retraining on its own
        scans); optimizer, scheduler and step start fresh. Every tensor must match by name and shape."""
        found = load_checkpoint(path)["state_dict"]
        own = self.model.state_dict()
        bad = [k for k, v in own.items() if k not in found or tuple(found[k].shape) != tuple(v.shape)]
        if bad:
            raise ValueError(f"{Path(path).name} does not match this network ({len(bad)} of {len(own)} tensors "
                             f"differ or are missing, e.g. '{bad[0]}'): use the config it was trained with")
        self.model.load_state_dict({k: found[k] for k in own})

    # Loop
    def _log(self, row: dict) -> None:
        with open(self.out / "metrics.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")

    def _validate(self) -> None:
        self.model.eval()
        metrics = self.task.validate(self.model)
        self.model.train()
        if not metrics:
            return
        self.metrics = {k: round(float(v), 5) for k, v in metrics.items()}
        score = self.metrics[self.task.main_metric]
        self.scheduler.step(score)
        self._log({"step": self.step, "phase": "val", **self.metrics,
                   "lr": self.optimizer.param_groups[0]["lr"]})
        if self.best is None or score > self.best:
            self.best = score
            self.save("best.pt")

    def _train_step(self) -> dict:
        batch = self.task.to_device(self.task.batch())
        self.optimizer.zero_grad(set_to_none=True)
        loss, parts = self.task.loss(self.model, batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {float(loss)} at step {self.step}; lower the lr")
        loss.backward()
        self.optimizer.step()
        if hasattr(self.task, "after_step"):
            self.task.after_step(self.model)
        return parts

    def fit(self) -> Path:
        cfg = self.cfg
        self.model.train()
        start = time.monotonic() - self.wall_s
        bar = tqdm(total=cfg.max_steps, initial=self.step, disable=not self.progress_bar,
                   desc=f"train {self.model_name}", dynamic_ncols=True)
        try:
            self._loop(bar, start)
        except FloatingPointError:
            raise
        except BaseException:
            # cancelled, stopped by a signal, or failed between steps: the last finished step is a
            # good state, so a rerun resumes from it instead of from the last periodic checkpoint
            self.save()
            raise
        finally:
            bar.close()
        if self.step % cfg.validate_every:
            self._validate()
        return self.save()

    def _loop(self, bar, start: float) -> None:
        cfg = self.cfg
        while self.step < cfg.max_steps:
            parts = self._train_step()
            self.step += 1
            self.wall_s = time.monotonic() - start
            bar.update(1)
            bar.set_postfix(loss=f"{parts['loss']:.4f}")
            if self.step % cfg.log_every == 0 or self.step == 1:
                self._log({"step": self.step, "phase": "train", **parts, "wall_s": round(self.wall_s, 1)})
            if self.step % cfg.validate_every == 0:
                self._validate()
            if self.step % cfg.checkpoint_every == 0:
                self.save()
            if cfg.max_minutes and self.wall_s > 60 * cfg.max_minutes:
                self._log({"step": self.step, "phase": "stop", "reason": "max_minutes reached"})
                break
            if self.on_step is not None:
                self.on_step(self.step, self.wall_s)


def run_training(config: dict, out_dir, resume=None, command: str = "", progress_bar: bool = True,
                 datasets=None, init_from=None) -> Path:
    """Load the data the config names, train, and return the last checkpoint's path."""
    from training.data import describe, load_datasets
    from training.tasks import data_config, task_class

    cls = task_class(config["model"])
    loader = getattr(cls, "load_data", None)     # tasks with their own data (MR) load it themselves
    if datasets is not None:
        train, val = datasets
    else:
        train, val = loader(config) if loader else load_datasets(data_config(config))
    seed = int(config.get("optim", {}).get("seed", 0))
    task = cls(config, train, val, seed)
    summary = getattr(cls, "describe", describe)
    task.data_description = {"train": summary(train), "validation": summary(val)}
    if getattr(task, "unlabelled_description", None):
        task.data_description["unlabelled"] = task.unlabelled_description
    trainer = Trainer(task, config, out_dir, command, progress_bar)
    if init_from and not resume:
        trainer.init_weights(init_from)
    if resume:
        trainer.resume(resume)
    return trainer.fit()
