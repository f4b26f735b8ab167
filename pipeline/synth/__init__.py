"""The synthetic municipality: residents in households, the legacy exports of every source, 外字 and corruptions, with fixed seeds."""
