"""nerfstudio's Trainer with safe checkpoints: every spikegen method's ``TrainerConfig`` targets this subclass.

What nerfstudio 1.1.5's own ``save_checkpoint`` / ``_load_checkpoint`` lack, and :mod:`spikegen_nvs.checkpoints`
provides: atomic writes, no checkpoint of NaN weights, a fallback checkpoint kept, resuming past a corrupt newest
checkpoint, and the run state (RNGs, camera order, densification statistics) that an exact resume needs.
Nothing of nerfstudio is replaced: other methods keep nerfstudio's Trainer.

``--max-num-iterations`` is the run's TOTAL step count, also when resuming. nerfstudio 1.1.5 resumes
(``--load-dir``) at the checkpoint's step + 1 and then runs ``max_num_iterations`` MORE steps, so a 200-step run
resumed from its step-79 checkpoint ends at step 279, past the schedules it was configured for (learning-rate
decay, densification stop, SH degree steps are all placed on the total). Here it runs steps 80–199 and stops
where the uninterrupted run would have; a run that already reached its total trains no further (raise
``--max-num-iterations`` to train longer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from nerfstudio.engine.trainer import Trainer, TrainerConfig

from spikegen_nvs.checkpoints import (
    KEEP_LATEST,
    RUN_STATE_KEY,
    capture_run_state,
    checkpoint_path,
    console_print,
    newest_good_checkpoint,
    prune_checkpoints,
    read_checkpoint,
    restore_run_state,
    unwrap_pipeline,
    write_checkpoint,
)


class SpikeGenTrainer(Trainer):
    """nerfstudio's Trainer; checkpoints saved and loaded, and resumed runs ended, as the module docstring says."""

    config: SpikeGenTrainerConfig

    def remaining_steps(self) -> int:
        """Steps left to reach the configured total from the step training starts at (0 unless resumed)."""
        return max(0, self.config.max_num_iterations - self._start_step)

    def train(self) -> None:
        total, remaining = self.config.max_num_iterations, self.remaining_steps()
        if self._start_step > 0:
            console_print(f"Resuming at step {self._start_step} of {total}: {remaining} steps to go")
        if remaining == 0:
            console_print(
                f"[yellow]Already trained to step {self._start_step - 1} of {total}: nothing to do. Pass a larger "
                "--max-num-iterations (the total, counted from step 0) to train longer"
            )
            return
        # nerfstudio's loop runs steps [start, start + max_num_iterations): give it the remaining count.
        self.config.max_num_iterations = remaining
        try:
            super().train()
        finally:
            self.config.max_num_iterations = total

    def save_checkpoint(self, step: int) -> None:
        """Same contents as nerfstudio's plus the run state; written atomically; keeps a fallback."""
        from nerfstudio.utils import comms

        if not comms.is_main_process():
            return
        pipeline = unwrap_pipeline(self.pipeline)
        state = {
            "step": step,
            "pipeline": pipeline.state_dict(),
            "optimizers": {k: v.state_dict() for (k, v) in self.optimizers.optimizers.items()},
            "schedulers": {k: v.state_dict() for (k, v) in self.optimizers.schedulers.items()},
            "scalers": self.grad_scaler.state_dict(),
            RUN_STATE_KEY: capture_run_state(self),
        }
        write_checkpoint(state, checkpoint_path(self.checkpoint_dir, step))
        if self.config.save_only_latest_checkpoint:
            prune_checkpoints(self.checkpoint_dir, KEEP_LATEST)

    def _load_checkpoint(self) -> None:
        """nerfstudio's loading, past a corrupt newest checkpoint, plus the run state."""
        config = self.config
        if config.load_dir is not None and config.load_step is None:
            path, state = newest_good_checkpoint(Path(config.load_dir))
        elif config.load_dir is not None:
            path = checkpoint_path(Path(config.load_dir), config.load_step)
            state = read_checkpoint(path)
        elif config.load_checkpoint is not None:
            path = Path(config.load_checkpoint)
            state = read_checkpoint(path)
        else:
            console_print("No Nerfstudio checkpoint to load, so training from scratch.")
            return
        self._start_step = state["step"] + 1
        self.pipeline.load_pipeline(state["pipeline"], state["step"])
        # Splatfacto's load_state_dict replaces every Gaussian parameter with a new tensor of the saved size, so
        # the optimisers built in setup() hold orphans: nerfstudio's resume then leaves the model frozen until the
        # next densification swaps them. Build the optimisers (and schedulers) on the loaded parameters.
        self.optimizers = self.setup_optimizers()
        self.optimizers.load_optimizers(state["optimizers"])
        if "schedulers" in state and config.load_scheduler:
            self.optimizers.load_schedulers(state["schedulers"])
        self.grad_scaler.load_state_dict(state["scalers"])
        restore_run_state(self, state.get(RUN_STATE_KEY))
        console_print(f"Done loading Nerfstudio checkpoint from {path}")


@dataclass
class SpikeGenTrainerConfig(TrainerConfig):
    """nerfstudio's ``TrainerConfig`` building :class:`SpikeGenTrainer`."""

    _target: type = field(default_factory=lambda: SpikeGenTrainer)
