"""The encoder behind the interface LangChain-style callers expect.

Anything that calls ``embed_documents(list[str])`` and ``embed_query(str)``
(LangChain's ``Embeddings`` protocol, LlamaIndex wrappers, plain scripts) can
take an :class:`EncoderEmbeddings`; langchain itself is not needed.
"""

from __future__ import annotations

from search.encoder import Encoder


class EncoderEmbeddings:
    """Embeds documents and queries as lists of floats with one encoder.

    Where the model defines ``query`` and ``document`` prompts (as E5-style
    models do), each side gets its own; all-MiniLM-L6-v2 has none.
    """

    def __init__(self, encoder: Encoder, batch_size: int = 32) -> None:
        self.encoder = encoder
        self.batch_size = batch_size

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        prompt = self._prompt("document")
        embeddings = self.encoder.encode(
            texts, batch_size=self.batch_size, prompt_name=prompt
        )
        return [row.tolist() for row in embeddings]

    def embed_query(self, text: str) -> list[float]:
        embedding = self.encoder.encode(text, prompt_name=self._prompt("query"))
        return [float(x) for x in embedding]

    def _prompt(self, name: str) -> str | None:
        return name if name in self.encoder.config.prompts else None
