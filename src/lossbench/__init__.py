"""lossbench."""

from lossbench.resolvers import register as _register_resolvers

_register_resolvers()
