"""Training: the loop, checkpoints and run state, the run directory, distributed and runtime setup.

==================  =========================================================
module              role
==================  =========================================================
``engine``          ``fit``, ``train_one_epoch``, ``predict``, ``evaluate``
``checkpoint``      atomic ``save`` / ``load`` of ``checkpoint.pt`` and ``best.pt``
``run_state``       what a checkpoint holds; whether a run may resume from it
``rundir``          the run directory's files: config, metrics, predictions
``stopping``        SIGINT / SIGTERM: finish the batch, save, exit 130 / 143
``distributed``     torchrun process groups, agreement between ranks
``runtime``         device, threads, seeds, determinism
``outcomes``        the results ``fit`` and ``predict`` return
==================  =========================================================
"""
