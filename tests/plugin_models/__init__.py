"""Models defined outside the package, loaded by ``[model] name = "module:Attribute"``."""
