"""Data: dataset readers and registry, tokenisation, GloVe embeddings, batches and loaders.

==================  =========================================================
module              role
==================  =========================================================
``datasets``        ``load(name, data_dir)``: the readers of every dataset, caches
``text``            tokenisers, ``Vocab``
``embeddings``      GloVe text files, word and label embedding matrices
``batching``        torch ``Dataset``, ``collate`` -> ``Batch``, length buckets
``loading``         a run's data, embeddings and ``DataLoader`` from its config
==================  =========================================================
"""
