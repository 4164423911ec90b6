"""What a restore can lose besides rows: the schema objects of a database, as comparable text.

Each query returns ``(key, definition)`` pairs. Keys name the object kind and the object
(``view public.v``, ``trigger audit on public.orders``); definitions are PostgreSQL's own
rendering (``pg_get_viewdef``, ``pg_get_functiondef``, ...), so two databases with the same
objects give equal maps. Objects that belong to an extension are left to the extension's
version, which is itself compared.
"""

from __future__ import annotations

from typing import Any, Protocol

USER_SCHEMA = (
    "{n}.nspname NOT IN ('pg_catalog', 'information_schema')"
    " AND {n}.nspname NOT LIKE 'pg\\_toast%' AND {n}.nspname NOT LIKE 'pg\\_temp%'"
)


def _not_extension_member(catalog: str, oid: str) -> str:
    return (
        f"NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '{catalog}'::regclass"
        f" AND e.objid = {oid} AND e.deptype = 'e')"
    )


COLUMNS_SQL = f"""
SELECT format('%I.%I.%I', n.nspname, c.relname, a.attname),
       concat_ws(' ', format_type(a.atttypid, a.atttypmod),
         CASE WHEN a.attnotnull THEN 'not null' END,
         CASE WHEN a.attgenerated = 's'
              THEN 'generated always as (' || pg_get_expr(d.adbin, d.adrelid) || ') stored'
              WHEN d.adbin IS NOT NULL THEN 'default ' || pg_get_expr(d.adbin, d.adrelid) END,
         CASE WHEN a.attidentity <> '' THEN 'identity ' || a.attidentity::text END,
         CASE WHEN a.attcollation <> t.typcollation
              THEN 'collate ' || a.attcollation::regcollation::text END)
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'c')
  AND {USER_SCHEMA.format(n="n")} AND {_not_extension_member("pg_class", "c.oid")}
ORDER BY 1
"""

_RELATIONS = f"""
SELECT CASE c.relkind WHEN 'v' THEN 'view ' ELSE 'materialized view ' END
         || format('%I.%I', n.nspname, c.relname),
       pg_get_viewdef(c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('v', 'm') AND {USER_SCHEMA.format(n="n")}
  AND {_not_extension_member("pg_class", "c.oid")}
UNION ALL
SELECT 'table ' || format('%I.%I', n.nspname, c.relname),
       concat_ws(' ', 'owner ' || pg_get_userbyid(c.relowner), 'acl ' || c.relacl::text,
         CASE WHEN c.relrowsecurity THEN 'row security' END,
         CASE WHEN c.relforcerowsecurity THEN 'forced' END,
         CASE c.relpersistence WHEN 'u' THEN 'unlogged' END,
         'partition of ' || (SELECT i.inhparent::regclass::text FROM pg_inherits i
                             WHERE i.inhrelid = c.oid AND c.relispartition),
         'bound ' || pg_get_expr(c.relpartbound, c.oid),
         'partitioned by ' || CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND {USER_SCHEMA.format(n="n")}
  AND {_not_extension_member("pg_class", "c.oid")}
"""

_ROUTINES = f"""
SELECT CASE p.prokind WHEN 'p' THEN 'procedure ' WHEN 'a' THEN 'aggregate '
         ELSE 'function ' END || p.oid::regprocedure::text,
       concat_ws(' ', CASE WHEN p.prokind = 'a' THEN 'aggregate'
                           ELSE pg_get_functiondef(p.oid) END,
         'owner ' || pg_get_userbyid(p.proowner), 'acl ' || p.proacl::text)
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE {USER_SCHEMA.format(n="n")} AND {_not_extension_member("pg_proc", "p.oid")}
"""

_TRIGGERS = """
SELECT format('trigger %I on %s', t.tgname, t.tgrelid::regclass::text),
       pg_get_triggerdef(t.oid) || ' enabled=' || t.tgenabled::text
FROM pg_trigger t WHERE NOT t.tgisinternal
UNION ALL
SELECT format('event trigger %I', evtname), evtevent || ' ' || evtfoid::regproc::text
       || ' enabled=' || evtenabled::text
FROM pg_event_trigger
"""

_EXTENSIONS = """
SELECT 'extension ' || quote_ident(x.extname), x.extversion || ' in ' || n.nspname
FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace
"""

_TYPES = f"""
SELECT 'type ' || t.oid::regtype::text,
       CASE t.typtype
         WHEN 'e' THEN 'enum (' || (SELECT string_agg(quote_literal(e.enumlabel), ', '
                                     ORDER BY e.enumsortorder)
                                    FROM pg_enum e WHERE e.enumtypid = t.oid) || ')'
         WHEN 'd' THEN concat_ws(' ', 'domain over ' || format_type(t.typbasetype, t.typtypmod),
                                 CASE WHEN t.typnotnull THEN 'not null' END,
                                 'default ' || t.typdefault)
         WHEN 'r' THEN 'range of ' || (SELECT r.rngsubtype::regtype::text FROM pg_range r
                                       WHERE r.rngtypid = t.oid)
         ELSE 'composite' END
       || ' owner ' || pg_get_userbyid(t.typowner)
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE (t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND EXISTS (
        SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind = 'c')))
  AND {USER_SCHEMA.format(n="n")} AND {_not_extension_member("pg_type", "t.oid")}
UNION ALL
SELECT format('domain constraint %I on %s', co.conname, co.contypid::regtype::text),
       pg_get_constraintdef(co.oid)
FROM pg_constraint co JOIN pg_type t ON t.oid = co.contypid
JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE {USER_SCHEMA.format(n="n")}
"""

_POLICIES_AND_SCHEMAS = f"""
SELECT format('policy %I on %s', p.polname, p.polrelid::regclass::text),
       concat_ws(' ', p.polcmd::text,
         CASE WHEN p.polpermissive THEN 'permissive' ELSE 'restrictive' END,
         'to ' || (SELECT string_agg(CASE r WHEN 0 THEN 'public' ELSE pg_get_userbyid(r) END, ',')
                   FROM unnest(p.polroles) r),
         'using ' || pg_get_expr(p.polqual, p.polrelid),
         'check ' || pg_get_expr(p.polwithcheck, p.polrelid))
FROM pg_policy p
UNION ALL
SELECT 'schema ' || quote_ident(n.nspname),
       concat_ws(' ', 'owner ' || pg_get_userbyid(n.nspowner), 'acl ' || n.nspacl::text)
FROM pg_namespace n
WHERE {USER_SCHEMA.format(n="n")} AND {_not_extension_member("pg_namespace", "n.oid")}
"""

OBJECTS_SQL = (
    "SELECT * FROM ("
    + " UNION ALL ".join(
        f"({part})"
        for part in (_RELATIONS, _ROUTINES, _TRIGGERS, _EXTENSIONS, _TYPES, _POLICIES_AND_SCHEMAS)
    )
    + ") o ORDER BY 1"
)

#: definitions PostgreSQL renders differently across major versions: compared by presence only
#: when two fingerprints come from different majors
VERSION_DEPENDENT = ("view ", "materialized view ", "function ", "procedure ", "trigger ")


class Queryable(Protocol):
    def query(self, sql: str, params: None = None, dbname: str = "postgres") -> list[Any]: ...


def columns(node: Queryable, dbname: str = "postgres") -> dict[str, str]:
    """``schema.table.column`` -> type, NOT NULL, default or generation, identity, collation."""
    return {str(k): str(v) for k, v in node.query(COLUMNS_SQL, dbname=dbname)}


def objects(node: Queryable, dbname: str = "postgres") -> dict[str, str]:
    """Every schema object a restore can lose, keyed by kind and name (see the module doc)."""
    return {str(k): str(v) for k, v in node.query(OBJECTS_SQL, dbname=dbname)}
