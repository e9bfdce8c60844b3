-- The address a user proved they receive mail at (issue 17). The user's email is verified while
-- it still equals this; a changed address is unverified until its own link is used.
ALTER TABLE users ADD COLUMN verified_email TEXT;
