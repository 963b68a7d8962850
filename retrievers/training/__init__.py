"""Training the retrieval models: the bidirectional-reconstruction LLM embedder and the Gumbel reranker.

- `embedder`, `anchor_reconstruction` (Stage I), `contrastive` (Stage II): arXiv 2509.03020;
- `gumbel_rerank`, `fid_reader`: arXiv 2502.11116;
- `records`: the plain query / positive / negatives records both read, and the BEIR converter.

Trained models are plain HF folders: the embedder loads as the dense encoder `hf:<folder>:last`,
the reranker as the rerank stage's `hf:<folder>`. Heavy imports (torch, transformers, peft) happen
inside the functions that need them.
"""
