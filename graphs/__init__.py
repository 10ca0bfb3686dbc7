"""Knowledge graphs: loaders, the networkx store, path search, the on-disk cache, the entity index."""
