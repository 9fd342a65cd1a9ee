import { Injectable } from '@nestjs/common';
import argon2 from 'argon2';
import { AppConfig } from '../config/app-config.js';

/** argon2id (OWASP's first choice); the memory cost comes from config so tests can go light. */
@Injectable()
export class PasswordHasher {
  // A real hash to verify against when the user does not exist, so login takes as long either way.
  private dummyHash: Promise<string> | null = null;

  constructor(private readonly config: AppConfig) {}

  hash(password: string): Promise<string> {
    return argon2.hash(password, { type: argon2.argon2id, memoryCost: this.config.passwordHashMemoryKib, timeCost: 2 });
  }

  /** False for no hash, and for a hash that is not argon2's (`!`: users of the server API or of product tokens have no password). */
  async verify(hash: string | null, password: string): Promise<boolean> {
    if (hash === null || !hash.startsWith('$')) {
      this.dummyHash ??= this.hash('not-a-real-password');
      await argon2.verify(await this.dummyHash, password);
      return false;
    }
    return argon2.verify(hash, password);
  }
}
