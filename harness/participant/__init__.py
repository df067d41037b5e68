"""A participant's tools: the base and sample images, the starter folder."""
