//! Reads for WHOIS.
