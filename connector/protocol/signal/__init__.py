"""The Signal protocol as WhatsApp uses it: pairwise sessions, sender keys, Baileys' stored formats."""
