"""Offline tools: DeepLabCut projects, training, evaluation and export (and, from other
modules, frame picking and annotation). Heavy engines are imported inside functions."""
