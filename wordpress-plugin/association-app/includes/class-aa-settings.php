<?php
/**
 * Plugin settings: the Sync API switch, the key (stored only as a salted hash), the rate limit,
 * the served entity types and the user writes run as.
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

class AA_Settings {

	const OPT_ENABLED      = 'association_app_sync_enabled';
	const OPT_KEY_HASH     = 'association_app_sync_key_hash';
	const OPT_KEY_SALT     = 'association_app_sync_key_salt';
	const OPT_KEY_CREATED  = 'association_app_sync_key_created_gmt';
	const OPT_RATE_LIMIT   = 'association_app_rate_limit';
	const OPT_ENTITY_TYPES = 'association_app_entity_types';
	const OPT_SYNC_USER    = 'association_app_sync_user';
	const OPT_RATE_LOG     = 'association_app_rate_log';
	// Not on the settings page: the window stays 60 s unless a host (or a test) sets it.
	const OPT_RATE_WINDOW  = 'association_app_rate_window';

	// Requests per window. One sync sends one request at a time, so it occupies at most one
	// PHP worker: 300 a minute is about what one worker of a modest 2-worker host serves of
	// 100-record pages (bench/wordpress_rate.py measured 85-246), so a single sync runs at
	// the site's own speed, while several connectors of one site together are held to about
	// one worker's worth and leave the other to visitors. 120 (the old default) held a sync
	// to 200 records/s on a site that served 400 without helping visitors: their page time
	// rose as much at 120 as with no limit (1.4-2.2x); only two syncs at once (2.2-3.8x) did
	// worse. The platform paces itself to the limit it is told (X-RateLimit-* headers).
	const DEFAULT_RATE_LIMIT = 300;
	const RATE_WINDOW        = 60;
	const RETENTION_DAYS     = 180;
	const KEY_LENGTH         = 48;

	/** Canonical order of entity types (contract §1) => endpoint name. */
	const ENTITY_ENDPOINTS = array(
		'article'      => 'articles',
		'member'       => 'members',
		'event'        => 'events',
		'document'     => 'documents',
		'conference'   => 'conferences',
		'company'      => 'companies',
		'notification' => 'notifications',
	);

	public static function install_defaults() {
		add_option( self::OPT_ENABLED, '1' );
		add_option( self::OPT_RATE_LIMIT, self::DEFAULT_RATE_LIMIT );
		add_option( self::OPT_ENTITY_TYPES, array_keys( self::ENTITY_ENDPOINTS ) );
		if ( ! get_option( self::OPT_SYNC_USER ) ) {
			$user_id = get_current_user_id();
			if ( ! $user_id || ! user_can( $user_id, 'manage_options' ) ) {
				$admins  = get_users(
					array(
						'role'    => 'administrator',
						'number'  => 1,
						'orderby' => 'ID',
						'fields'  => 'ID',
					)
				);
				$user_id = $admins ? (int) $admins[0] : 0;
			}
			update_option( self::OPT_SYNC_USER, $user_id );
		}
		// Read on every sync request only: never autoloaded on normal page views.
		add_option( self::OPT_RATE_LOG, array(), '', 'no' );
	}

	public static function enabled() {
		return '1' === (string) get_option( self::OPT_ENABLED, '1' );
	}

	public static function rate_limit() {
		return max( 0, (int) get_option( self::OPT_RATE_LIMIT, self::DEFAULT_RATE_LIMIT ) );
	}

	/** Seconds of the rolling rate limit window (contract §12), 60 unless set. */
	public static function rate_window() {
		return max( 1, (int) get_option( self::OPT_RATE_WINDOW, self::RATE_WINDOW ) );
	}

	/** Served entity types, in canonical order. */
	public static function entity_types() {
		$chosen = get_option( self::OPT_ENTITY_TYPES, array_keys( self::ENTITY_ENDPOINTS ) );
		if ( ! is_array( $chosen ) ) {
			$chosen = array_keys( self::ENTITY_ENDPOINTS );
		}
		return array_values( array_intersect( array_keys( self::ENTITY_ENDPOINTS ), $chosen ) );
	}

	public static function sync_user_id() {
		return (int) get_option( self::OPT_SYNC_USER, 0 );
	}

	public static function has_key() {
		return '' !== (string) get_option( self::OPT_KEY_HASH, '' );
	}

	private static function hash_key( $key, $salt ) {
		return hash_hmac( 'sha256', $key, $salt );
	}

	/**
	 * A new random key (alphanumeric, 48 characters). Only an HMAC of it with a per-site salt is
	 * stored, so a leaked database does not leak the key. The old key stops working at once.
	 */
	public static function generate_key() {
		$key  = wp_generate_password( self::KEY_LENGTH, false, false );
		$salt = wp_generate_password( 64, true, true );
		update_option( self::OPT_KEY_SALT, $salt, false );
		update_option( self::OPT_KEY_HASH, self::hash_key( $key, $salt ), false );
		update_option( self::OPT_KEY_CREATED, gmdate( 'Y-m-d H:i:s' ), false );
		return $key;
	}

	public static function revoke_key() {
		delete_option( self::OPT_KEY_HASH );
		delete_option( self::OPT_KEY_SALT );
		delete_option( self::OPT_KEY_CREATED );
	}

	/** Constant-time comparison of the presented key with the stored hash. */
	public static function key_matches( $presented ) {
		$stored = (string) get_option( self::OPT_KEY_HASH, '' );
		$salt   = (string) get_option( self::OPT_KEY_SALT, '' );
		if ( '' === $stored || '' === $salt ) {
			// Still hash, so a site without a key answers as slowly as one with a key.
			hash_equals( self::hash_key( 'x', 'y' ), self::hash_key( (string) $presented, 'y' ) );
			return false;
		}
		return hash_equals( $stored, self::hash_key( (string) $presented, $salt ) );
	}

	/**
	 * What the last rate_limit_wait() decided, announced on the answer (contract §12):
	 * array( limit, remaining, reset seconds ), or null when the limit is off.
	 */
	private static $rate_state = null;

	/**
	 * Rolling-window rate limit (contract §12). Returns 0 when the request may proceed, else the
	 * number of seconds to wait. The log holds the timestamps of the last window's requests.
	 */
	public static function rate_limit_wait() {
		$limit = self::rate_limit();
		if ( 0 === $limit ) {
			self::$rate_state = null;
			return 0;
		}
		$window = self::rate_window();
		$now    = microtime( true );
		$log    = get_option( self::OPT_RATE_LOG, array() );
		$log    = is_array( $log ) ? $log : array();
		$cutoff = $now - $window;
		$log    = array_values(
			array_filter(
				$log,
				function ( $t ) use ( $cutoff ) {
					return (float) $t > $cutoff;
				}
			)
		);
		sort( $log );
		if ( count( $log ) >= $limit ) {
			$oldest           = (float) $log[ count( $log ) - $limit ];
			$wait             = max( 1, (int) ceil( $oldest + $window - $now ) );
			self::$rate_state = array( $limit, 0, $wait );
			return $wait;
		}
		$log[] = $now;
		update_option( self::OPT_RATE_LOG, $log, false );
		// Reset: when the oldest request of the window leaves it and frees a slot.
		$reset            = max( 0, (int) ceil( $log[0] + $window - $now ) );
		self::$rate_state = array( $limit, $limit - count( $log ), $reset );
		return 0;
	}

	/**
	 * The rate limit headers of this answer (contract §12), empty when the limit is off. The
	 * names are the de-facto X-RateLimit-* trio (GitHub, Twitter); Reset is in seconds from now
	 * as in the IETF draft (no clock to share), and RateLimit-Policy says the window.
	 */
	public static function rate_limit_headers() {
		// Null: the limit is off, or the request was refused before it (no key, switched off).
		if ( null === self::$rate_state ) {
			return array();
		}
		$window                            = self::rate_window();
		list( $limit, $remaining, $reset ) = self::$rate_state;
		return array(
			'X-RateLimit-Limit'     => (string) $limit,
			'X-RateLimit-Remaining' => (string) $remaining,
			'X-RateLimit-Reset'     => (string) $reset,
			'RateLimit-Policy'      => $limit . ';w=' . $window,
		);
	}
}
