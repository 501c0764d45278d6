"""A language model (Gemini on Vertex AI) for what the rules cannot read: free-form
messages and voice notes. Optional, validated, and never the author of a reply."""
