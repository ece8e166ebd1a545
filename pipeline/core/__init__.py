"""The shared core every step builds on: the data contracts (``schema``), errors, language names and codes,
table files, credentials routing, the private-address guard, the Hugging Face Hub and community links.

Nothing here imports a step package (``filter``, ``playground``, ``generate``, ``argilla``, ``export``)."""
