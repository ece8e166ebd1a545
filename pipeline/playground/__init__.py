"""Step 2, Playground: compare models side by side on a sampled prompt, vote and keep a tally (``compare``), and
the per-language system-prompt templates (``templates``) the Pipeline step reuses."""
