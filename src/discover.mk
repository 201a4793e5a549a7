# Rules for this part of the tree are added here.
