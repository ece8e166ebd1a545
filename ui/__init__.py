"""Gradio wiring only: each tab module builds its components and connects them to functions in ``pipeline``."""
