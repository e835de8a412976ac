//! API keys, integrators' API secrets, and the layer that requires one of them.
