export {
  type DrizzleAdapter,
  type DrizzleDatabaseLike,
  type DrizzleTransactionLike,
  drizzleAdapter,
} from './drizzle-adapter.js'
