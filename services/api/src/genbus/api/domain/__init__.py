"""The api's pure model: generation status rules, request validation and canonical form."""
