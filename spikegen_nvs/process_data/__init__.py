"""``spikegen-process-data``: raw spike streams (+ photos) → dense frames → COLMAP poses → a spike scene folder.

``pipeline`` runs the steps and holds the CLI; ``inputs`` finds and reads the captures, ``colmap`` registers
the dense frames with pycolmap, ``poses`` turns the registration into window poses.
"""
