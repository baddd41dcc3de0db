"""The LLM layer: providers, response cache, Clio facets, contrastive naming, Clio hierarchy."""
