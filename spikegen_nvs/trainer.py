"""spikegen-splat's trainer: nerfstudio's, with ``--max-num-iterations`` as the run's TOTAL step count.

nerfstudio 1.1.5 resumes (``--load-dir``) at the checkpoint's step + 1 and then runs ``max_num_iterations``
MORE steps, so a 200-step run resumed from its step-79 checkpoint ends at step 279, past the schedules it was
configured for (learning-rate decay, densification stop, SH degree steps are all placed on the total). Here
a resumed run continues to the original total: resumed from step 79 of 200 it runs steps 80–199 and stops
where the uninterrupted run would have. A run that already reached its total trains no further (raise
``--max-num-iterations`` to train longer).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nerfstudio.engine.trainer import Trainer, TrainerConfig
from nerfstudio.utils.rich_utils import CONSOLE


class SpikeGenTrainer(Trainer):
    """:class:`~nerfstudio.engine.trainer.Trainer` whose training loop ends at ``max_num_iterations`` in total,
    also after a resume. Checkpoint safety (atomic writes, fallback, run state) comes from
    :mod:`spikegen_nvs.checkpoints`, as for every nerfstudio Trainer."""

    config: SpikeGenTrainerConfig

    def remaining_steps(self) -> int:
        """Steps left to reach the configured total from the step training starts at (0 unless resumed)."""
        return max(0, self.config.max_num_iterations - self._start_step)

    def train(self) -> None:
        total, remaining = self.config.max_num_iterations, self.remaining_steps()
        if self._start_step > 0:
            CONSOLE.print(f"Resuming at step {self._start_step} of {total}: {remaining} steps to go")
        if remaining == 0:
            CONSOLE.print(
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


@dataclass
class SpikeGenTrainerConfig(TrainerConfig):
    """TrainerConfig of spikegen-splat: ``max_num_iterations`` is the total, also when resuming."""

    _target: type = field(default_factory=lambda: SpikeGenTrainer)
