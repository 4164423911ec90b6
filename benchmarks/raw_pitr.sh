#!/usr/bin/env bash
# The PITR drill's steps done by hand with PostgreSQL's own tools (the baseline for
# bench_foundation.py): primary with archive -> base backup -> rows -> restore point ->
# more rows -> DELETE -> restore to the restore point, promote -> verify.
# Usage: raw_pitr.sh BINDIR TEMPLATE_DATADIR WORKDIR PORT1 PORT2   (run as the server user)
set -euo pipefail
BIN=$1 TEMPLATE=$2 W=$3 P1=$4 P2=$5
PSQL1=("$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$W/sock" -p "$P1" -U postgres -d postgres)
PSQL2=("$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$W/sock" -p "$P2" -U postgres -d postgres)
mkdir -p "$W/sock" "$W/archive"
cp -a "$TEMPLATE" "$W/primary"
cat > "$W/primary/pgdr.conf" <<CONF
port = $P1
listen_addresses = ''
unix_socket_directories = '$W/sock'
fsync = off
shared_buffers = 32MB
wal_level = replica
archive_mode = on
archive_command = 'test ! -f $W/archive/%f && cp %p $W/archive/%f'
CONF
"$BIN/pg_ctl" -D "$W/primary" -l "$W/primary.log" -w -s start
"${PSQL1[@]}" -c "CREATE TABLE employees (id serial PRIMARY KEY, full_name text NOT NULL,
  dept text NOT NULL, salary numeric(10,2) CHECK (salary > 0));
  INSERT INTO employees (full_name, dept, salary) VALUES
  ('Asha Singh','IT',1200000), ('Rohit Verma','Finance',950000), ('Pooja Das','HR',600000)"
"$BIN/pg_basebackup" -h "$W/sock" -p "$P1" -U postgres -D "$W/backup" -X stream -c fast --no-sync
"${PSQL1[@]}" -c "INSERT INTO employees (full_name, dept, salary) SELECT 'Employee ' || g,
  (ARRAY['IT','Finance','HR','Ops'])[mod(g, 4) + 1], 1000 + g FROM generate_series(1, 1000) g"
"${PSQL1[@]}" -c "SELECT pg_create_restore_point('before_delete')"
"${PSQL1[@]}" -c "INSERT INTO employees (full_name, dept, salary) SELECT 'Employee ' || g,
  (ARRAY['IT','Finance','HR','Ops'])[mod(g, 4) + 1], 1000 + g FROM generate_series(1001, 1500) g"
"${PSQL1[@]}" -c "DELETE FROM employees WHERE dept = 'Finance'"
SEG=$("${PSQL1[@]}" -tAc "SELECT pg_walfile_name(pg_switch_wal())")
until [ -f "$W/archive/$SEG" ]; do sleep 0.01; done
# disaster declared: restore the base backup, recover to the restore point, promote
cp -a "$W/backup" "$W/restored"
cat > "$W/restored/pgdr.conf" <<CONF
port = $P2
listen_addresses = ''
unix_socket_directories = '$W/sock'
fsync = off
shared_buffers = 32MB
restore_command = 'cp $W/archive/%f %p'
recovery_target_name = 'before_delete'
recovery_target_action = 'promote'
CONF
touch "$W/restored/recovery.signal"
"$BIN/pg_ctl" -D "$W/restored" -l "$W/restored.log" -w -s start
until [ "$("${PSQL2[@]}" -tAc 'SELECT pg_is_in_recovery()')" = f ]; do sleep 0.01; done
COUNT=$("${PSQL2[@]}" -tAc "SELECT count(*) FROM employees")
[ "$COUNT" = 1003 ] || { echo "expected 1003 rows, got $COUNT" >&2; exit 1; }
"$BIN/pg_ctl" -D "$W/restored" -m immediate -s stop
"$BIN/pg_ctl" -D "$W/primary" -m immediate -s stop
