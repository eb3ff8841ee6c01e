"""The township's office: what the web console shows and does, for staff, the county and cadres.

Every page calls these use cases (and the chat's own, for what the chat also does) with the
actor the console resolved from its session; nothing outside a person's scope is found.
"""
