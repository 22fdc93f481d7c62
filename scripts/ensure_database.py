"""Create the PostgreSQL database a URL names when it does not exist yet.

Usage: ensure_database.py postgres://user:pass@host:5432/name

It connects to the server's ``postgres`` maintenance database with the URL's credentials, so it
needs no psql client and works with any host `make run` or the test suite is pointed at.
"""

import sys

import dj_database_url
import psycopg2
from psycopg2 import errors, sql


def main(url: str) -> int:
    config = dj_database_url.parse(url)
    if "postgresql" not in config["ENGINE"]:
        print(f"not a PostgreSQL URL: {url}", file=sys.stderr)
        return 2
    name = config["NAME"]
    connection = psycopg2.connect(
        dbname="postgres",
        user=config.get("USER") or None,
        password=config.get("PASSWORD") or None,
        host=config.get("HOST") or None,
        port=config.get("PORT") or None,
    )
    connection.autocommit = True  # CREATE DATABASE cannot run inside a transaction
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if cursor.fetchone():
                return 0
            try:
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            except errors.DuplicateDatabase:
                return 0  # another process created it meanwhile
            print(f"created PostgreSQL database {name}")
    finally:
        connection.close()
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
