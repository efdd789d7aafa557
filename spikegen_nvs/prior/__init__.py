"""The core SpikeGen model as a prior on rendered views: ``guidance`` (losses, schedules, pose sampling; no
nerfstudio model code), ``model`` (the splatfacto subclass that applies it), ``checkpoint`` (the shipped splat prior).
"""
