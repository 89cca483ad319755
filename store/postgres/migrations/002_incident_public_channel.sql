-- A security incident whose channel was public moves to a private channel:
-- channel is then the private one, and public_channel the one it left (where
-- the bot answers only "this incident moved").
ALTER TABLE incidents ADD COLUMN public_channel text CHECK (public_channel <> '');
CREATE INDEX incidents_public_channel_idx ON incidents (public_channel) WHERE public_channel IS NOT NULL;
