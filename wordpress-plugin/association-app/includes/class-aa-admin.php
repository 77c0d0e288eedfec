<?php
/**
 * WP Admin: Settings → Association App (Sync tab: key, switch, rate limit, entity types, sync
 * user), a meta box with the association fields on the plugin's post types, and the member
 * fields on user profiles.
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

class AA_Admin {

	const PAGE          = 'association-app';
	const META_NONCE    = 'association_app_meta';
	const PROFILE_NONCE = 'association_app_profile';

	public static function init() {
		add_action( 'admin_menu', array( __CLASS__, 'menu' ) );
		add_action( 'admin_post_association_app_save_settings', array( __CLASS__, 'handle_save_settings' ) );
		add_action( 'add_meta_boxes', array( __CLASS__, 'meta_boxes' ) );
		add_action( 'save_post', array( __CLASS__, 'save_meta_box' ), 10, 2 );
		add_action( 'show_user_profile', array( __CLASS__, 'profile_fields' ) );
		add_action( 'edit_user_profile', array( __CLASS__, 'profile_fields' ) );
		add_action( 'personal_options_update', array( __CLASS__, 'save_profile_fields' ) );
		add_action( 'edit_user_profile_update', array( __CLASS__, 'save_profile_fields' ) );
	}

	/**
	 * The plaintext of a freshly generated key waits here between the POST that made it and the
	 * page that shows it: per user (another admin never sees it), for minutes only, and deleted
	 * by the first page view that shows it.
	 */
	const NEW_KEY_TRANSIENT = 'association_app_new_key_';
	const NEW_KEY_TTL       = 300;

	/** The key the current page view shows once (taken from the transient), never stored. */
	private static $new_key = null;

	public static function menu() {
		$hook = add_options_page(
			__( 'Association App', 'association-app' ),
			__( 'Association App', 'association-app' ),
			'manage_options',
			self::PAGE,
			array( __CLASS__, 'render_page' )
		);
		add_action( 'load-' . $hook, array( __CLASS__, 'handle_generate_key' ) );
	}

	private static function page_url( $args = array() ) {
		return add_query_arg( array_merge( array( 'page' => self::PAGE, 'tab' => 'sync' ), $args ), admin_url( 'options-general.php' ) );
	}

	/**
	 * Post/Redirect/Get. The POST makes the key and redirects; the GET it lands on shows the key
	 * once. Answering the POST with the key would let a refresh (or Back) re-submit the form and
	 * silently replace the key the admin has just copied. A refresh of the GET finds no transient:
	 * it shows no key and makes none.
	 */
	public static function handle_generate_key() {
		if ( 'POST' !== ( isset( $_SERVER['REQUEST_METHOD'] ) ? $_SERVER['REQUEST_METHOD'] : '' ) ) {
			self::take_new_key();
			return;
		}
		if ( ! isset( $_POST['action'] ) || 'association_app_generate_key' !== $_POST['action'] ) { // phpcs:ignore WordPress.Security.NonceVerification
			return;
		}
		if ( ! current_user_can( 'manage_options' ) ) {
			wp_die( esc_html__( 'You are not allowed to manage the sync key.', 'association-app' ), 403 );
		}
		check_admin_referer( 'association_app_generate_key' );
		set_transient( self::NEW_KEY_TRANSIENT . get_current_user_id(), AA_Settings::generate_key(), self::NEW_KEY_TTL );
		// 303: the browser follows with a GET, so reloading the landing page never re-posts.
		wp_safe_redirect( self::page_url(), 303 );
		exit;
	}

	/** Moves this user's waiting key, if any, from the transient into this page view. */
	private static function take_new_key() {
		if ( ! current_user_can( 'manage_options' ) ) {
			return;
		}
		$name = self::NEW_KEY_TRANSIENT . get_current_user_id();
		$key  = get_transient( $name );
		if ( false === $key ) {
			return;
		}
		delete_transient( $name );
		if ( ! AA_Settings::key_matches( (string) $key ) ) {
			return; // Replaced since (another admin, WP-CLI): showing it would hand out a dead key.
		}
		self::$new_key = (string) $key;
		// The page carries a secret. WP Admin's own no-cache still lets the browser keep it on
		// disk and in the back/forward cache; no-store does not.
		header( 'Cache-Control: no-store, no-cache, must-revalidate, max-age=0, private' );
	}

	public static function handle_save_settings() {
		if ( ! current_user_can( 'manage_options' ) ) {
			wp_die( esc_html__( 'You are not allowed to change these settings.', 'association-app' ), 403 );
		}
		check_admin_referer( 'association_app_save_settings' );
		$enabled = isset( $_POST['enabled'] ) ? '1' : '0';
		$limit   = isset( $_POST['rate_limit'] ) ? max( 0, (int) $_POST['rate_limit'] ) : AA_Settings::DEFAULT_RATE_LIMIT;
		$types   = isset( $_POST['entity_types'] ) ? array_map( 'sanitize_key', (array) wp_unslash( $_POST['entity_types'] ) ) : array();
		$types   = array_values( array_intersect( array_keys( AA_Settings::ENTITY_ENDPOINTS ), $types ) );
		$user_id = isset( $_POST['sync_user'] ) ? (int) $_POST['sync_user'] : 0;
		update_option( AA_Settings::OPT_ENABLED, $enabled );
		update_option( AA_Settings::OPT_RATE_LIMIT, $limit );
		update_option( AA_Settings::OPT_ENTITY_TYPES, $types );
		if ( $user_id && user_can( $user_id, 'edit_others_posts' ) ) {
			update_option( AA_Settings::OPT_SYNC_USER, $user_id );
		}
		wp_safe_redirect( self::page_url( array( 'saved' => '1' ) ) );
		exit;
	}

	/** Entity type => what an editor recognises it as, in the canonical order. */
	private static function entity_labels() {
		return array(
			'article'      => __( 'Articles (posts)', 'association-app' ),
			'member'       => __( 'Members (users)', 'association-app' ),
			'event'        => __( 'Events', 'association-app' ),
			'document'     => __( 'Documents, policies and recalls', 'association-app' ),
			'conference'   => __( 'Conferences', 'association-app' ),
			'company'      => __( 'Companies', 'association-app' ),
			'notification' => __( 'Notifications', 'association-app' ),
		);
	}

	public static function render_page() {
		if ( ! current_user_can( 'manage_options' ) ) {
			return;
		}
		$new_key = self::$new_key;
		$created = get_option( AA_Settings::OPT_KEY_CREATED );
		$admins  = get_users(
			array(
				'role__in' => array( 'administrator', 'editor' ),
				'fields'   => array( 'ID', 'display_name' ),
			)
		);
		?>
		<div class="wrap">
			<h1><?php esc_html_e( 'Association App', 'association-app' ); ?></h1>
			<nav class="nav-tab-wrapper">
				<a href="<?php echo esc_url( self::page_url() ); ?>" class="nav-tab nav-tab-active"><?php esc_html_e( 'Sync', 'association-app' ); ?></a>
			</nav>
			<?php if ( isset( $_GET['saved'] ) ) : // phpcs:ignore WordPress.Security.NonceVerification ?>
				<div class="notice notice-success"><p><?php esc_html_e( 'Settings saved.', 'association-app' ); ?></p></div>
			<?php endif; ?>

			<h2><?php esc_html_e( 'Sync API key', 'association-app' ); ?></h2>
			<?php if ( $new_key ) : ?>
				<?php // "inline": WP Admin would otherwise move the notice above the tabs, away from this section. ?>
				<div class="notice notice-warning inline">
					<p><strong><?php esc_html_e( 'Copy this key now and paste it into the Association App platform. It is shown only once; the site stores only a hash of it.', 'association-app' ); ?></strong></p>
					<p><input type="text" class="large-text code" readonly value="<?php echo esc_attr( $new_key ); ?>" id="association-app-key"></p>
				</div>
			<?php elseif ( AA_Settings::has_key() ) : ?>
				<p>
				<?php
				/* translators: %s: date and time (UTC) */
				echo esc_html( sprintf( __( 'A key is configured (generated %s UTC). It cannot be shown again; generate a new one if it was lost.', 'association-app' ), $created ) );
				?>
				</p>
			<?php else : ?>
				<p><?php esc_html_e( 'No key yet: the platform cannot connect until you generate one.', 'association-app' ); ?></p>
			<?php endif; ?>
			<form method="post" action="<?php echo esc_url( self::page_url() ); ?>">
				<input type="hidden" name="action" value="association_app_generate_key">
				<?php wp_nonce_field( 'association_app_generate_key' ); ?>
				<?php
				submit_button(
					AA_Settings::has_key() ? __( 'Regenerate key (the old key stops working immediately)', 'association-app' ) : __( 'Generate key', 'association-app' ),
					AA_Settings::has_key() ? 'secondary' : 'primary',
					'submit',
					false
				);
				?>
			</form>
			<p><?php esc_html_e( 'Site URL to enter on the platform:', 'association-app' ); ?> <code><?php echo esc_html( home_url() ); ?></code>
			&nbsp; <?php esc_html_e( 'API base:', 'association-app' ); ?> <code><?php echo esc_html( home_url( '/api/v1/sync/' ) ); ?></code></p>
			<?php if ( ! get_option( 'permalink_structure' ) ) : ?>
				<div class="notice notice-error inline"><p><?php esc_html_e( 'Pretty permalinks are off: /api/v1/sync/ cannot work. Choose any structure other than "Plain" under Settings → Permalinks and save.', 'association-app' ); ?></p></div>
			<?php endif; ?>

			<h2><?php esc_html_e( 'Settings', 'association-app' ); ?></h2>
			<form method="post" action="<?php echo esc_url( admin_url( 'admin-post.php' ) ); ?>">
				<input type="hidden" name="action" value="association_app_save_settings">
				<?php wp_nonce_field( 'association_app_save_settings' ); ?>
				<table class="form-table" role="presentation">
					<tr><th scope="row"><?php esc_html_e( 'Sync API', 'association-app' ); ?></th>
						<td><label><input type="checkbox" name="enabled" value="1" <?php checked( AA_Settings::enabled() ); ?>> <?php esc_html_e( 'Enabled', 'association-app' ); ?></label></td></tr>
					<tr><th scope="row"><label for="aa-rate"><?php esc_html_e( 'Rate limit (requests per 60 s, 0 = off)', 'association-app' ); ?></label></th>
						<td><input id="aa-rate" type="number" min="0" name="rate_limit" value="<?php echo esc_attr( AA_Settings::rate_limit() ); ?>"></td></tr>
					<tr><th scope="row"><?php esc_html_e( 'Entity types served', 'association-app' ); ?></th>
						<td>
						<?php foreach ( self::entity_labels() as $entity => $label ) : ?>
							<label><input type="checkbox" name="entity_types[]" value="<?php echo esc_attr( $entity ); ?>" <?php checked( in_array( $entity, AA_Settings::entity_types(), true ) ); ?>> <?php echo esc_html( $label ); ?></label><br>
						<?php endforeach; ?>
						</td></tr>
					<tr><th scope="row"><label for="aa-user"><?php esc_html_e( 'Write changes from the platform as', 'association-app' ); ?></label></th>
						<td><select id="aa-user" name="sync_user">
						<?php foreach ( $admins as $admin ) : ?>
							<option value="<?php echo esc_attr( $admin->ID ); ?>" <?php selected( (int) $admin->ID, AA_Settings::sync_user_id() ); ?>><?php echo esc_html( $admin->display_name ); ?></option>
						<?php endforeach; ?>
						</select></td></tr>
				</table>
				<?php submit_button(); ?>
			</form>
		</div>
		<?php
	}

	// ------------------------------------------------------------------ post meta box

	public static function meta_boxes( $post_type ) {
		$fields = AA_Content::post_meta_fields();
		if ( isset( $fields[ $post_type ] ) ) {
			add_meta_box( 'association-app-fields', __( 'Association App', 'association-app' ), array( __CLASS__, 'render_meta_box' ), $post_type, 'normal' );
		}
	}

	public static function render_meta_box( $post ) {
		$fields = AA_Content::post_meta_fields()[ $post->post_type ];
		wp_nonce_field( self::META_NONCE, self::META_NONCE . '_nonce' );
		echo '<table class="form-table" role="presentation">';
		foreach ( $fields as $key => $spec ) {
			$value = (string) get_post_meta( $post->ID, $key, true );
			echo '<tr><th scope="row"><label for="' . esc_attr( $key ) . '">' . esc_html( $spec[1] ) . '</label></th><td>';
			if ( 0 === strpos( $spec[0], 'enum:' ) ) {
				echo '<select id="' . esc_attr( $key ) . '" name="' . esc_attr( $key ) . '">';
				foreach ( explode( ',', substr( $spec[0], 5 ) ) as $option ) {
					echo '<option value="' . esc_attr( $option ) . '"' . selected( $value, $option, false ) . '>' . esc_html( $option ) . '</option>';
				}
				echo '</select>';
			} elseif ( 'text' === $spec[0] ) {
				echo '<textarea class="large-text" rows="2" id="' . esc_attr( $key ) . '" name="' . esc_attr( $key ) . '">' . esc_textarea( $value ) . '</textarea>';
			} else {
				$types = array(
					'int'  => 'number',
					'url'  => 'url',
					'date' => 'date',
				);
				$type  = isset( $types[ $spec[0] ] ) ? $types[ $spec[0] ] : 'text';
				$hint  = 'gmt' === $spec[0] ? ' placeholder="YYYY-MM-DD HH:MM:SS"' : '';
				echo '<input class="regular-text" type="' . esc_attr( $type ) . '" id="' . esc_attr( $key ) . '" name="' . esc_attr( $key ) . '" value="' . esc_attr( $value ) . '"' . $hint . '>'; // phpcs:ignore WordPress.Security.EscapeOutput
			}
			echo '</td></tr>';
		}
		echo '</table>';
	}

	public static function save_meta_box( $post_id, $post ) {
		if ( ! isset( $_POST[ self::META_NONCE . '_nonce' ] ) || ! wp_verify_nonce( sanitize_text_field( wp_unslash( $_POST[ self::META_NONCE . '_nonce' ] ) ), self::META_NONCE ) ) {
			return;
		}
		if ( ( defined( 'DOING_AUTOSAVE' ) && DOING_AUTOSAVE ) || ! current_user_can( 'edit_post', $post_id ) ) {
			return;
		}
		$fields = AA_Content::post_meta_fields();
		if ( ! isset( $fields[ $post->post_type ] ) ) {
			return;
		}
		foreach ( $fields[ $post->post_type ] as $key => $spec ) {
			if ( ! isset( $_POST[ $key ] ) ) {
				continue;
			}
			$value = 'text' === $spec[0] ? sanitize_textarea_field( wp_unslash( $_POST[ $key ] ) ) : sanitize_text_field( wp_unslash( $_POST[ $key ] ) );
			if ( 'gmt' === $spec[0] && '' !== $value ) {
				$parsed = AA_Entities::parse_gmt( str_replace( ' ', 'T', $value ) );
				$value  = null === $parsed ? '' : $parsed;
			} elseif ( 'url' === $spec[0] ) {
				$value = esc_url_raw( $value, array( 'http', 'https' ) );
			}
			if ( '' === $value ) {
				delete_post_meta( $post_id, $key );
			} else {
				update_post_meta( $post_id, $key, wp_slash( $value ) );
			}
		}
	}

	// ------------------------------------------------------------------ user profile

	private static function profile_spec() {
		return array(
			'_association_phone'            => __( 'Phone', 'association-app' ),
			'_association_job_title'        => __( 'Job title', 'association-app' ),
			'_association_company'          => __( 'Company', 'association-app' ),
			'_association_address_street'   => __( 'Street', 'association-app' ),
			'_association_address_city'     => __( 'City', 'association-app' ),
			'_association_address_postcode' => __( 'Postcode', 'association-app' ),
			'_association_address_country'  => __( 'Country (ISO code, e.g. DE)', 'association-app' ),
		);
	}

	public static function profile_fields( $user ) {
		wp_nonce_field( self::PROFILE_NONCE, self::PROFILE_NONCE . '_nonce' );
		echo '<h2>' . esc_html__( 'Association membership', 'association-app' ) . '</h2><table class="form-table" role="presentation">';
		foreach ( self::profile_spec() as $key => $label ) {
			echo '<tr><th><label for="' . esc_attr( $key ) . '">' . esc_html( $label ) . '</label></th><td><input class="regular-text" type="text" id="' . esc_attr( $key ) . '" name="' . esc_attr( $key ) . '" value="' . esc_attr( (string) get_user_meta( $user->ID, $key, true ) ) . '"></td></tr>';
		}
		$certs = get_user_meta( $user->ID, '_association_certifications', true );
		$certs = is_array( $certs ) ? implode( "\n", $certs ) : (string) $certs;
		echo '<tr><th><label for="_association_certifications">' . esc_html__( 'Certifications (one per line)', 'association-app' ) . '</label></th><td><textarea class="large-text" rows="3" id="_association_certifications" name="_association_certifications">' . esc_textarea( $certs ) . '</textarea></td></tr>';
		echo '</table>';
	}

	public static function save_profile_fields( $user_id ) {
		if ( ! isset( $_POST[ self::PROFILE_NONCE . '_nonce' ] ) || ! wp_verify_nonce( sanitize_text_field( wp_unslash( $_POST[ self::PROFILE_NONCE . '_nonce' ] ) ), self::PROFILE_NONCE ) ) {
			return;
		}
		if ( ! current_user_can( 'edit_user', $user_id ) ) {
			return;
		}
		foreach ( array_keys( self::profile_spec() ) as $key ) {
			if ( isset( $_POST[ $key ] ) ) {
				$value = sanitize_text_field( wp_unslash( $_POST[ $key ] ) );
				if ( '' === $value ) {
					delete_user_meta( $user_id, $key );
				} else {
					update_user_meta( $user_id, $key, wp_slash( $value ) );
				}
			}
		}
		if ( isset( $_POST['_association_certifications'] ) ) {
			$lines = preg_split( '/\r\n|\r|\n/', sanitize_textarea_field( wp_unslash( $_POST['_association_certifications'] ) ) );
			$lines = array_values( array_filter( array_map( 'trim', $lines ), 'strlen' ) );
			update_user_meta( $user_id, '_association_certifications', $lines );
		}
	}
}
