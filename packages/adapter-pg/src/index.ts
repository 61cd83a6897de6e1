export { type PgClientLike, type PgPoolClientLike, type PgPoolLike, pgAdapter } from './pg-adapter.js'
