"""The HA stack around the servers: cluster managers (Patroni + etcd) and the client paths
(libpq multi-host, pgbouncer, pgpool-II) the application reaches the primary through."""
