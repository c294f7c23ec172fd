//! WHOIS (RFC 3912): answers for domain and handle queries, and the TCP server.
