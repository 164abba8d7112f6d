"""Reward-model training: plain torch + transformers, no Django.

The web process imports ``training.ml.config``, ``training.ml.data`` and
``training.ml.split`` (all cheap, no torch); the training worker imports the
rest. Keep this file free of imports so that stays true.
"""
