//! Reads for the zone export.
