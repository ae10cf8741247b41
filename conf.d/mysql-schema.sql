-- Example schema for Postern's mysql: tables (docs/mysql.md).
-- mariadb < mysql-schema.sql as root; then create a read-only user:
--   CREATE USER 'postern'@'localhost' IDENTIFIED BY 'secret';
--   GRANT SELECT ON mail.* TO 'postern'@'localhost';

CREATE DATABASE IF NOT EXISTS mail CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;
USE mail;

-- Domains delivered to virtual mailboxes (virtual_mailbox_domains).
CREATE TABLE IF NOT EXISTS virtual_domains (
  name VARCHAR(255) NOT NULL PRIMARY KEY
);

-- One row per mailbox: maildir is relative to virtual_mailbox_base; a path
-- ending in "/" is a maildir, otherwise an mbox file.  password is for the
-- POP3/AUTH services of later releases (a crypt(3) hash).
CREATE TABLE IF NOT EXISTS virtual_mailboxes (
  email    VARCHAR(255) NOT NULL PRIMARY KEY,
  maildir  VARCHAR(255) NOT NULL,
  password VARCHAR(255) NOT NULL DEFAULT '',
  active   TINYINT(1)   NOT NULL DEFAULT 1
);

-- virtual_alias_maps: source is user@domain or @domain (catch-all);
-- several rows for one source fan out.
CREATE TABLE IF NOT EXISTS virtual_aliases (
  source      VARCHAR(255) NOT NULL,
  destination VARCHAR(255) NOT NULL,
  PRIMARY KEY (source, destination)
);
