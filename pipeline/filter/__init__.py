"""Step 1, Filter: load Aya (or any prompt/response dataset, or the bundled demo data) and keep one language
(``data``)."""
